/* error.c: see error.h. */
#include "error.h"

#include <stdio.h>
#include <uv.h>

const char *ph__strerror(int err) {
  static _Thread_local char text[160];
  char name[32], meaning[96];

  switch (err) {
  case 0:
    return "OK";
  case PH__EINVAL:
    return "PH_EINVAL (malformed argument)";
  case PH__ENOMEM:
    return "PH_ENOMEM (out of memory)";
  case PH__ENOTSUP:
    return "PH_ENOTSUP (not possible in this session or host)";
  case PH__EALREADY:
    return "PH_EALREADY (the call was already replied to)";
  case PH__ENOSERVICE:
    return "PH_ENOSERVICE (no live instance provides the service)";
  case PH__ECANCELED:
    return "PH_ECANCELED (the call was cancelled or timed out)";
  case PH__EINPUT:
    return "PH_EINPUT (input is required)";
  case PH__EFAIL:
    return "PH_EFAIL (failed)";
  }
  if (err > 0 || err <= PH__EBASE) {
    snprintf(text, sizeof(text), "%d (not an error code of the host)", err);
    return text;
  }
  /* The _r forms: uv_strerror() leaks its text for codes it does not
   * know. */
  uv_err_name_r(err, name, sizeof(name));
  uv_strerror_r(err, meaning, sizeof(meaning));
  snprintf(text, sizeof(text), "%s (%s)", name, meaning);
  return text;
}

int ph__abi_error(int err) {
  if (err == 0)
    return PH_OK;
  if (err < PH__EBASE && err >= PH__EFAIL)
    return err - PH__EBASE;
  switch (err) {
  case UV_ENOMEM:
    return PH_ENOMEM;
  case UV_ECANCELED:
    return PH_ECANCELED;
  case UV_ENOTSUP:
  case UV_EBUSY:
    return PH_ENOTSUP;
  default:
    return PH_EINVAL;
  }
}
