/* authz.c: see authz.h. */
#include "authz.h"

#include "alloc.h"
#include "call.h"
#include "error.h"
#include "log.h"
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#define PRM_PATH "/.well-known/oauth-protected-resource"

/* One check in flight: the service call, and what came back. */
typedef struct check {
  uv_work_t work;
  ph_call *root;         /* The host's side: no principal, no outlet. */
  ph_call *sub;          /* The service call on the provider. */
  ph_instance *provider; /* Borrowed from sub, which holds it. */
  char *request;         /* {token, audience, issuers, scheme}. */
  ph__authn_cb cb;
  void *data;
  int replied;
  char *result; /* The reply, or NULL with code and message. */
  int code;
  char *message;
} check;

static int pending;

int ph__authn_pending(void) {
  return pending;
}

/* libuv's threadpool: the service as host_api.c's service_call runs it,
 * but on this thread instead of a plugin's. */
static void run_check(uv_work_t *w) {
  check *c = PH__CONTAINER_OF(w, check, work);
  const char *message, *data;

  ph__call_ref(c->sub); /* The provider's reference, dropped by its reply. */
  c->provider->plugin->service(c->sub, "authn", c->request, c->provider->state);
  c->replied = ph__call_replied(c->sub);
  if (!c->replied) {
    ph__call_plugin_done(c->sub);
    return;
  }
  c->result = ph__call_take_result(c->sub, &c->code, &message, &data);
  c->message = ph__xstrdup_or_null(message);
}

static const char *member_string(const cJSON *obj, const char *key) {
  const char *v =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));

  return v != NULL ? v : "";
}

/* The answer as the contract has it: a principal, or a refusal. */
static void checked(uv_work_t *w, int status) {
  check *c = PH__CONTAINER_OF(w, check, work);
  ph__authn_result r = {.status = PH__AUTHN_FAILED,
                        .reason = "",
                        .description = "the authentication service failed"};
  cJSON *answer = NULL;
  const char *error;
  char *principal = NULL;

  pending--;
  if (status != 0 || !c->replied) {
    ph__error("authn of %s did not reply", c->provider->label);
  } else if (c->code != 0 || c->result == NULL) {
    ph__error("authn of %s refused the host's request: %d %s",
              c->provider->label, c->code, c->message ? c->message : "");
  } else if (!cJSON_IsObject(answer = cJSON_Parse(c->result))) {
    ph__error("authn of %s answered something other than an object",
              c->provider->label);
  } else if ((error = cJSON_GetStringValue(
                  cJSON_GetObjectItemCaseSensitive(answer, "error")))) {
    r.status = strcmp(error, "temporarily_unavailable") == 0
                   ? PH__AUTHN_UNAVAILABLE
                   : PH__AUTHN_INVALID;
    r.reason = member_string(answer, "reason");
    r.description = member_string(answer, "error_description");
  } else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(answer, "sub"))) {
    ph__error("authn of %s answered a principal without a sub",
              c->provider->label);
  } else {
    r.status = PH__AUTHN_OK;
    r.principal = principal = ph__xjson_print(answer);
  }
  c->cb(&r, c->data);
  cJSON_Delete(answer);
  free(principal);
  free(c->result);
  free(c->message);
  free(c->request);
  ph__call_unref(c->sub);
  ph__call_unref(c->root);
  free(c);
}

static char *request_text(const ph__department_cfg *d, const char *token,
                          const char *scheme) {
  cJSON *rq = ph__xcheck(cJSON_CreateObject()), *list;
  char **iss;
  char *text;

  ph__xjson_put_string(rq, "token", token);
  ph__xjson_put_string(rq, "audience", d->auth.public_url);
  if (d->auth.issuers != NULL) {
    list = ph__xcheck(cJSON_CreateArray());
    for (iss = d->auth.issuers; *iss != NULL; iss++)
      ph__xjson_append(list, cJSON_CreateString(*iss));
    ph__xjson_put(rq, "issuers", list);
  }
  ph__xjson_put_string(rq, "scheme", scheme);
  text = ph__xjson_print(rq);
  cJSON_Delete(rq);
  return text;
}

int ph__authn_start(uv_loop_t *loop, const ph__config *cfg,
                    const ph__department_cfg *d, const char *token,
                    const char *scheme, ph__authn_cb cb, void *data) {
  ph_instance *provider = NULL;
  ph__generation *g;
  const ph__dept *dept;
  check *c;
  int err;

  if (d->auth.public_url == NULL)
    return PH__EINVAL;
  if (pending >= cfg->limits.queue_per_plugin)
    return UV_EBUSY;
  g = ph__registry_acquire();
  if (g != NULL && (dept = ph__generation_dept(g, d->name)) != NULL)
    provider = ph__dept_service(dept, "authn");
  if (provider == NULL) {
    ph__generation_unref(g);
    return PH__ENOSERVICE;
  }
  c = ph__xcalloc(1, sizeof(*c));
  c->request = request_text(d, token, scheme);
  c->root = ph__call_new(PH__CALL_SERVICE, NULL, 0);
  /* The call references the provider: it outlives a reload meanwhile. */
  c->sub = ph__call_new_service(c->root, provider, "authn", c->request);
  c->provider = provider;
  ph__generation_unref(g);
  c->cb = cb;
  c->data = data;
  err = uv_queue_work(loop, &c->work, run_check, checked);
  if (err != 0) {
    ph__call_unref(c->sub);
    ph__call_unref(c->root);
    free(c->request);
    free(c);
    return err;
  }
  pending++;
  return 0;
}

/* ---- Metadata and challenges ---- */

char *ph__prm_url(const char *public_url) {
  const char *host = strstr(public_url, "://");
  const char *path = host ? host + 3 + strcspn(host + 3, "/") : public_url;

  return ph__xasprintf("%.*s" PRM_PATH "%s", (int)(path - public_url),
                       public_url, path);
}

static cJSON *string_array(char **list) {
  cJSON *arr = ph__xcheck(cJSON_CreateArray());

  for (; list != NULL && *list != NULL; list++)
    ph__xjson_append(arr, cJSON_CreateString(*list));
  return arr;
}

char *ph__prm_document(const ph__department_cfg *d) {
  cJSON *doc = ph__xcheck(cJSON_CreateObject()), *methods;
  char *text;

  ph__xjson_put_string(doc, "resource", d->auth.public_url);
  ph__xjson_put(doc, "authorization_servers",
                string_array(d->auth.authorization_servers));
  if (d->auth.scopes_supported[0] != NULL)
    ph__xjson_put(doc, "scopes_supported",
                  string_array(d->auth.scopes_supported));
  methods = ph__xcheck(cJSON_CreateArray());
  ph__xjson_append(methods, cJSON_CreateString("header"));
  ph__xjson_put(doc, "bearer_methods_supported", methods);
  text = ph__xasprintf("plughost department %s", d->name);
  ph__xjson_put_string(doc, "resource_name", text);
  free(text);
  text = ph__xjson_print(doc);
  cJSON_Delete(doc);
  return text;
}

/* The scopes_supported, space-separated. Malloc'd. */
static char *joined(char **list) {
  size_t n = 1;
  char **p, *out;

  for (p = list; *p != NULL; p++)
    n += strlen(*p) + 1;
  out = ph__xcalloc(1, n);
  for (p = list; *p != NULL; p++) {
    if (p != list)
      strcat(out, " ");
    strcat(out, *p);
  }
  return out;
}

char *ph__bearer_challenge(const ph__department_cfg *d, const char *scope,
                           const char *error, const char *description) {
  char *url = ph__prm_url(d->auth.public_url);
  char *scopes = scope ? ph__xstrdup(scope) : joined(d->auth.scopes_supported);
  char desc[201], *out, *part;
  size_t i = 0;

  for (; description != NULL && *description != '\0' && i < sizeof(desc) - 1;
       description++)
    if (*description >= 0x20 && *description < 0x7f && *description != '"' &&
        *description != '\\')
      desc[i++] = *description;
  desc[i] = '\0';
  out = ph__xasprintf("Bearer resource_metadata=\"%s\"", url);
  if (scopes[0] != '\0') {
    part = ph__xasprintf("%s, scope=\"%s\"", out, scopes);
    free(out);
    out = part;
  }
  if (error != NULL) {
    part = ph__xasprintf("%s, error=\"%s\"", out, error);
    free(out);
    out = part;
    if (desc[0] != '\0') {
      part = ph__xasprintf("%s, error_description=\"%s\"", out, desc);
      free(out);
      out = part;
    }
  }
  free(url);
  free(scopes);
  return out;
}
