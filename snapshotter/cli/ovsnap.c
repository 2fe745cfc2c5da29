/* ovsnap: versioned volumes for containers. This file only dispatches to
 * the verbs; see cli-*.c. */
#include "cli.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define OVSNAP_VERSION "0.1.0"

static const struct
{
  const char *name;
  cli_verb fn;
  const char *summary;
} verbs[] = {
  { "volume", cli_volume, "create, list, delete volumes; show a volume's history" },
  { "put", cli_put, "copy a local file or tree into a volume (one new snapshot)" },
  { "get", cli_get, "copy a file or tree out of a volume" },
  { "ls", cli_ls, "list a directory of a volume" },
  { "rm", cli_rm, "remove a path from a volume" },
  { "cp", cli_cp, "copy paths within a volume" },
  { "diff", cli_diff, "paths added, modified and deleted between two snapshots" },
  { "rollback", cli_rollback, "a new snapshot whose tree equals an older one" },
  { "mount", cli_mount, "attach a volume at a directory (overlayfs)" },
  { "commit", cli_commit, "capture an attached directory's changes as a new snapshot" },
  { "reload", cli_reload, "remount an attached directory on the newest snapshot" },
  { "umount", cli_umount, "detach a volume from a directory" },
  { "status", cli_status, "attachments: volume, directory, snapshot, dirty or clean" },
  { "gc", cli_gc, "remove objects no snapshot references" },
  { "fsck", cli_fsck, "verify every record and object in the store" },
  { "snapshots", cli_snapshots, "ls: the containerd snapshots of an ovsnap-snapshotter root" },
};

static void
usage (FILE *f)
{
  fprintf (f, "usage: ovsnap [--root DIR] [--store s3://BUCKET[/PREFIX]] [--json] COMMAND [ARGS]\n\ncommands:\n");
  for (size_t i = 0; i < ARRAY_SIZE (verbs); i++)
    fprintf (f, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
  fprintf (f, "\n`ovsnap COMMAND --help` describes each command.\n"
              "The store is $OVSNAP_ROOT, or /var/lib/ovsnap; --root DIR overrides both.\n"
              "--store (or $OVSNAP_STORE) puts the store in an S3 bucket shared by many nodes;\n"
              "--root is then this node's caches and attachments.\n"
              "\nexit codes: 0 ok, 1 error, 2 usage, 3 not found (volume, snapshot or path),\n"
              "            4 volume busy, 5 no space (inode limit or disk), 6 corrupt store\n");
}

int
main (int argc, char **argv)
{
  ov_trace ("start");
  struct cli c = { .root = getenv ("OVSNAP_ROOT") };
  if (c.root == NULL || c.root[0] == '\0')
    c.root = "/var/lib/ovsnap";
  c.store_url = getenv ("OVSNAP_STORE");
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++)
    {
      if (strcmp (argv[i], "--json") == 0)
        c.json = true;
      else if (strcmp (argv[i], "--root") == 0 && i + 1 < argc)
        c.root = argv[++i];
      else if (strncmp (argv[i], "--root=", 7) == 0)
        c.root = argv[i] + 7;
      else if (strcmp (argv[i], "--store") == 0 && i + 1 < argc)
        c.store_url = argv[++i];
      else if (strncmp (argv[i], "--store=", 8) == 0)
        c.store_url = argv[i] + 8;
      else if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        {
          usage (stdout);
          return 0;
        }
      else if (strcmp (argv[i], "--version") == 0)
        {
          printf ("ovsnap %s\n", OVSNAP_VERSION);
          return 0;
        }
      else
        {
          fprintf (stderr, "ovsnap: unknown option '%s'\n", argv[i]);
          usage (stderr);
          return OV_EUSAGE;
        }
    }
  if (i == argc)
    {
      usage (stderr);
      return OV_EUSAGE;
    }
  for (size_t v = 0; v < ARRAY_SIZE (verbs); v++)
    if (strcmp (argv[i], verbs[v].name) == 0)
      {
        ov_error_t err = NULL;
        int r = verbs[v].fn (&c, argc - i, argv + i, &err);
        int code = OV_OK;
        if (r < 0 || err)
          {
            code = err ? err->code : OV_EGENERIC;
            fprintf (stderr, "ovsnap %s: %s\n", verbs[v].name, err ? err->msg : "failed");
            ov_error_free (&err);
          }
        if (fflush (stdout) != 0 && code == OV_OK)
          {
            perror ("ovsnap: write");
            code = OV_EGENERIC;
          }
        ov_node_close (c.node);
        return code;
      }
  fprintf (stderr, "ovsnap: unknown command '%s'\n", argv[i]);
  usage (stderr);
  return OV_EUSAGE;
}
