/* The ovsnap command line: one file per group of verbs, each parsing its
 * arguments and calling the engine. No engine logic lives here. */
#ifndef OVSNAP_CLI_H
#define OVSNAP_CLI_H

#include "error.h"
#include "node.h"
#include "changeset.h"
#include "volume.h"

#include <json-c/json.h>
#include <stdbool.h>

struct cli
{
  const char *root;
  const char *store_url;  /* --store or $OVSNAP_STORE: s3://BUCKET[/PREFIX]; NULL: local at root */
  bool json;
  struct ov_node *node;   /* this machine's caches and attachments */
  struct ov_store *store; /* node->store */
};

typedef int (*cli_verb) (struct cli *c, int argc, char **argv, ov_error_t *err);

/* Shared option parsing: handles --json, --root, --help; returns the
 * getopt result for the verb's own options. */
struct cli_opts
{
  const char *usage; /* "NAME LOCAL [REMOTE]" */
  const char *help;  /* the verb's own option lines */
};

int cli_open_store (struct cli *c, ov_error_t *err);
int cli_usage_error (const struct cli_opts *o, const char *verb, ov_error_t *err, const char *fmt,
                     ...) __attribute__ ((format (printf, 4, 5)));
void cli_print_help (const char *verb, const struct cli_opts *o);
void cli_json_print (struct json_object *o);
struct json_object *cli_json_id (const struct ov_oid *id);
/* A JSON string from bytes that may not be UTF-8. */
struct json_object *cli_json_str (const char *s);
char *cli_time (int64_t ns);
char *cli_short_id (const struct ov_oid *id);
/* The id of a new snapshot (the output of every verb that writes one). */
void cli_print_snapshot (struct cli *c, const struct ov_snapshot *snap);
/* Resolve --at (NULL: head) to a loaded snapshot. */
int cli_load_snapshot (struct cli *c, const char *volume, const char *at,
                       struct ov_snapshot *out, ov_error_t *err);

int cli_volume (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_put (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_get (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_ls (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_rm (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_cp (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_rollback (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_diff (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_mount (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_commit (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_reload (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_umount (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_status (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_gc (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_fsck (struct cli *c, int argc, char **argv, ov_error_t *err);
int cli_snapshots (struct cli *c, int argc, char **argv, ov_error_t *err);

/* getopt_long over argv with --json/--root/--help added to `longopts`
 * (which must end with a zero entry and leave room for 3 more). Returns
 * the index of the first operand, or -1 after printing help (exit 0), or
 * -2 on a usage error (err set). `handle` gets every verb-specific option. */
/* Option handlers for a verb with a single option: set a bool / keep the value. */
int cli_opt_flag (int opt, const char *arg, void *ctx);
int cli_opt_string (int opt, const char *arg, void *ctx);

int cli_parse (struct cli *c, int argc, char **argv, const char *verb, const struct cli_opts *o,
               const char *shortopts, const void *longopts,
               int (*handle) (int opt, const char *arg, void *ctx), void *ctx, ov_error_t *err);

#endif
