/* err.c - messages for flowvis error codes (see err.h). */
#include "base/err.h"

#include <string.h>

static const char *const messages[] = {
#define FV_ERR_MSG(sym, msg) [sym - FV_E_FIRST_ - 1] = msg,
    FV_ERRORS(FV_ERR_MSG)
#undef FV_ERR_MSG
};

const char *fv_strerror(int rc)
{
    int code = -rc;

    if (rc == 0)
        return "success";
    if (code > FV_E_FIRST_ && code < FV_E_LAST_)
        return messages[code - FV_E_FIRST_ - 1];
    if (code > 0 && code < FV_E_BASE)
        return strerror(code);
    return "unknown error";
}
