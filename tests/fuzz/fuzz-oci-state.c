/* Fuzz target: ov_oci_state_parse, the reader of the OCI state the runtime
 * writes to the hook's stdin. The input is handed over exactly as the hook
 * does (bytes and a length, no terminating NUL). A parsed state must carry
 * a usable container id (no '/', no control characters, not "." or ".."),
 * an absolute bundle path, a status and a pid in range; a refusal must be a
 * usage error that leaves the state empty. Violations abort. */
#include "oci.h"
#include "util.h"
#include "fuzz.h"

#include <stdio.h>

static bool
id_usable (const char *id)
{
  size_t n = strlen (id);
  if (n == 0 || n > 1024 || strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
    return false;
  for (const char *p = id; *p; p++)
    if (*p == '/' || (unsigned char) *p < 0x20)
      return false;
  return true;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct ov_oci_state st;
  ov_error_t err = NULL;
  int r = ov_oci_state_parse ((const char *) data, size, &st, &err);
  REQUIRE (r == 0 || r == -1);
  if (r < 0)
    {
      REQUIRE (err != NULL && err->code == OV_EUSAGE && strstr (err->msg, "OCI state"));
      REQUIRE (st.id == NULL && st.status == NULL && st.bundle == NULL);
      ov_error_free (&err);
      return 0;
    }
  REQUIRE (err == NULL);
  REQUIRE (st.id && id_usable (st.id));
  REQUIRE (st.bundle && st.bundle[0] == '/');
  REQUIRE (st.status != NULL);
  REQUIRE (st.pid >= 0 && st.pid < (1 << 22));
  ov_oci_state_free (&st);
  return 0;
}
