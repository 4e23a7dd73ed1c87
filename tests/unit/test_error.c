/* test_error.c: the host's error domain: its codes collide with no libuv
 * or errno value, each is named, and each maps to the ABI code plugins
 * see. */
#include <criterion/criterion.h>

#include <string.h>
#include <uv.h>

#include "error.h"

static const int host_codes[] = {PH__EINVAL,   PH__ENOMEM,     PH__ENOTSUP,
                                 PH__EALREADY, PH__ENOSERVICE, PH__ECANCELED,
                                 PH__EINPUT,   PH__EFAIL};

Test(error, host_codes_are_no_libuv_or_errno_codes) {
  char name[64];
  size_t i;

  for (i = 0; i < sizeof(host_codes) / sizeof(*host_codes); i++) {
    uv_err_name_r(host_codes[i], name, sizeof(name));
    cr_expect_eq(strncmp(name, "Unknown system error", 20), 0, "%d is %s",
                 host_codes[i], name);
  }
}

Test(error, every_code_is_named) {
  cr_expect_str_eq(ph__strerror(0), "OK");
  cr_expect_str_eq(ph__strerror(PH__EINVAL), "PH_EINVAL (malformed argument)");
  cr_expect_str_eq(ph__strerror(PH__ENOSERVICE),
                   "PH_ENOSERVICE (no live instance provides the service)");
  cr_expect_str_eq(ph__strerror(UV_EBUSY), "EBUSY (resource busy or locked)");
  cr_expect_str_eq(ph__strerror(UV_EPERM), "EPERM (operation not permitted)");
  cr_expect_str_eq(ph__strerror(PH__EBASE - 99),
                   "-30099 (not an error code of the host)");
  cr_expect_str_eq(ph__strerror(7), "7 (not an error code of the host)");
}

Test(error, the_abi_sees_its_own_codes) {
  cr_expect_eq(ph__abi_error(0), PH_OK);
  cr_expect_eq(ph__abi_error(PH__EINVAL), PH_EINVAL);
  cr_expect_eq(ph__abi_error(PH__EALREADY), PH_EALREADY);
  cr_expect_eq(ph__abi_error(PH__EFAIL), PH_EFAIL);
  cr_expect_eq(ph__abi_error(UV_ENOMEM), PH_ENOMEM);
  cr_expect_eq(ph__abi_error(UV_ECANCELED), PH_ECANCELED);
  cr_expect_eq(ph__abi_error(UV_EBUSY), PH_ENOTSUP, "a full queue");
  cr_expect_eq(ph__abi_error(UV_EPERM), PH_EINVAL,
               "what epoll refuses is a bad argument to the plugin");
}
