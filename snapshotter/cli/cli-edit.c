/* ovsnap rm, cp and rollback (the edits are in tree/edit.c). */
#include "cli.h"
#include "edit.h"

#include <getopt.h>
#include <stdio.h>

static const struct cli_opts rm_opts = {
  "NAME PATH [-r]",
  "Removes PATH from volume NAME (one new snapshot).\n"
  "  -r, --recursive  remove a directory and everything below it\n",
};
static const struct cli_opts cp_opts = {
  "NAME SRC... DST",
  "Copies paths within volume NAME (one new snapshot). With several SRC, a DST\n"
  "ending in /, or a DST that is an existing directory, each SRC lands in DST\n"
  "under its own name (DST is made if missing). Copies share storage with their\n"
  "source.\n",
};
static const struct cli_opts rollback_opts = {
  "NAME SNAP",
  "Makes a new snapshot of volume NAME whose tree equals snapshot SNAP's.\n"
  "History is kept: the rollback itself can be rolled back.\n",
};

int
cli_rm (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  static const struct option lo[] = { { "recursive", no_argument, NULL, 'r' }, { 0 } };
  bool recursive = false;
  int i = cli_parse (c, argc, argv, "rm", &rm_opts, "rR", lo, cli_opt_flag, &recursive, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 2)
    return cli_usage_error (&rm_opts, "rm", err, "expected NAME PATH"), -1;
  struct ov_snapshot snap;
  if (cli_open_store (c, err) < 0 || ov_rm (c->store, argv[i], argv[i + 1], recursive, &snap, err) < 0)
    return -1;
  cli_print_snapshot (c, &snap);
  snapshot_free (&snap);
  return 0;
}

int
cli_cp (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "cp", &cp_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i < 3)
    return cli_usage_error (&cp_opts, "cp", err, "expected NAME SRC... DST"), -1;
  struct ov_snapshot snap;
  if (cli_open_store (c, err) < 0
      || ov_cp (c->store, argv[i], argv + i + 1, argc - i - 2, argv[argc - 1], &snap, err) < 0)
    return -1;
  cli_print_snapshot (c, &snap);
  snapshot_free (&snap);
  return 0;
}

int
cli_rollback (struct cli *c, int argc, char **argv, ov_error_t *err)
{
  int i = cli_parse (c, argc, argv, "rollback", &rollback_opts, "", NULL, NULL, NULL, err);
  if (i < 0)
    return i == -1 ? 0 : -1;
  if (argc - i != 2)
    return cli_usage_error (&rollback_opts, "rollback", err, "expected NAME SNAP"), -1;
  struct ov_snapshot snap;
  if (cli_open_store (c, err) < 0 || ov_rollback (c->store, argv[i], argv[i + 1], &snap, err) < 0)
    return -1;
  cli_print_snapshot (c, &snap);
  snapshot_free (&snap);
  return 0;
}
