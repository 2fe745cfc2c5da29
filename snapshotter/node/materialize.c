#include "materialize.h"
#include "pool.h"
#include "uring.h"
#include "xattr.h"

#include <fcntl.h>
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void) (p), (void) (n))
#endif
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#define CHUNK (1u << 20)
#define SLOTS 64
#define SLOT_BUF (256u << 10)
#define RING_DEPTH 512

struct mat_file
{
  const struct ov_entry *e;
  int dirfd;
  struct mat_file *leader; /* hardlink group: link to this one, written first */
};

struct mat_dir
{
  const struct ov_entry *e;
  int fd;
};

struct ov_mat
{
  struct ov_store *s;
  int flags;
  struct ov_progress *progress, quiet;
  struct mat_file *files;
  size_t nfiles, capfiles;
  struct mat_dir *dirs;
  size_t ndirs, capdirs;
  struct ov_tree *trees; /* loaded trees: entries point into them */
  size_t ntrees, captrees;
  struct ov_entry **tops;
  size_t ntops;
  mode_t umask; /* what the process umask takes off a created file's mode */
};

/* The umask, read without changing it (umask(2) sets it process-wide,
 * under every other thread's feet). Unknown: assume it takes everything,
 * so every file gets its chmod. */
static mode_t
process_umask (void)
{
  FILE *f = fopen ("/proc/self/status", "re");
  char line[128];
  unsigned m = 0777;
  while (f && fgets (line, sizeof line, f))
    if (sscanf (line, "Umask: %o", &m) == 1)
      break;
  if (f)
    fclose (f);
  return m & 0777;
}

struct ov_mat *
ov_mat_new (struct ov_store *s, int flags, struct ov_progress *progress)
{
  struct ov_mat *m = xcalloc (1, sizeof *m);
  m->s = s;
  m->flags = flags;
  m->progress = progress ? progress : &m->quiet;
  m->umask = process_umask ();
  return m;
}

void
ov_mat_free (struct ov_mat *m)
{
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->ndirs; i++)
    if (m->dirs[i].fd >= 0)
      close (m->dirs[i].fd);
  for (size_t i = 0; i < m->ntrees; i++)
    tree_free (&m->trees[i]);
  for (size_t i = 0; i < m->ntops; i++)
    {
      entry_free (m->tops[i]);
      free (m->tops[i]);
    }
  free (m->tops);
  free (m->trees);
  free (m->dirs);
  free (m->files);
  free (m);
}

static void
obj_name (const struct ov_entry *e, char *out)
{
  oid_hex (&e->oid, out);
}

/* ---- metadata ---- */

/* By name beneath dirfd: we created the node ourselves with O_EXCL or
 * mkdirat, so the name is ours; AT_SYMLINK_NOFOLLOW where the call has it. */
static int
set_meta_at (int dirfd, const char *name, const struct ov_entry *e, bool created_with_mode,
             ov_error_t *err)
{
  /* A file we created is ours already, with its permission bits when
   * the umask took none of them (created_with_mode); chown clears set-id
   * bits, so chmod after. */
  bool chown_needed = geteuid () == 0 && (e->uid != geteuid () || e->gid != getegid ());
  if (chown_needed && fchownat (dirfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return ov_error (err, errno, "chown %s", name);
  if (e->type != OV_LNK && (!created_with_mode || (e->mode & 07000))
      && fchmodat (dirfd, name, e->mode & 07777, 0) < 0)
    return ov_error (err, errno, "chmod %s", name);
  if (e->nxattrs && xattrs_write (-1, dirfd, name, e, err) < 0)
    return -1;
  struct timespec ts[2] = { { e->mtime_sec, e->mtime_nsec }, { e->mtime_sec, e->mtime_nsec } };
  if (utimensat (dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return ov_error (err, errno, "set times of %s", name);
  return 0;
}

static int
set_meta_fd (int fd, const char *name, const struct ov_entry *e, ov_error_t *err)
{
  if (geteuid () == 0 && fchown (fd, e->uid, e->gid) < 0)
    return ov_error (err, errno, "chown %s", name);
  if (fchmod (fd, e->mode & 07777) < 0)
    return ov_error (err, errno, "chmod %s", name);
  if (e->nxattrs && xattrs_write (fd, -1, name, e, err) < 0)
    return -1;
  struct timespec ts[2] = { { e->mtime_sec, e->mtime_nsec }, { e->mtime_sec, e->mtime_nsec } };
  if (futimens (fd, ts) < 0)
    return ov_error (err, errno, "set times of %s", name);
  return 0;
}

/* ---- building the skeleton: dirs now, files queued ---- */

static int
make_node (struct ov_mat *m, const struct ov_entry *e, int dirfd, const char *name,
           ov_error_t *err)
{
  for (int attempt = 0; attempt < 2; attempt++)
    {
      int r = e->type == OV_LNK ? symlinkat (e->target, dirfd, name)
                                : mknodat (dirfd, name, e->mode & (S_IFMT | 07777), e->rdev);
      if (r == 0)
        break;
      if (errno == EEXIST && (m->flags & OV_MAT_FORCE) && attempt == 0
          && unlinkat (dirfd, name, 0) == 0)
        continue;
      return ov_error (err, errno, "create %s %s", ov_type_name (e->type), name);
    }
  /* FIFOs and devices are never opened: metadata goes by name. */
  return set_meta_at (dirfd, name, e, false, err);
}

static int add_entry (struct ov_mat *m, const struct ov_entry *e, int dirfd, const char *name,
                      ov_error_t *err);

/* A remote store fetches every file's contents at once, before the copies
 * start (and each directory's subtrees before the walk descends). */
static int
prefetch_files (struct ov_mat *m, ov_error_t *err)
{
  struct ov_obj_ref *refs = xmalloc ((m->nfiles + 1) * sizeof *refs);
  size_t n = 0;
  for (size_t i = 0; i < m->nfiles; i++)
    if (m->files[i].leader == NULL && m->files[i].e->size > 0)
      refs[n++] = (struct ov_obj_ref){ OV_BLOB, m->files[i].e->oid, m->files[i].e->size };
  int r = ov_store_prefetch (m->s, refs, n, err);
  free (refs);
  return r;
}

void
ov_mat_adopt_dir (struct ov_mat *m, int fd, const struct ov_entry *e)
{
  if (m->ndirs == m->capdirs)
    {
      m->capdirs = m->capdirs ? m->capdirs * 2 : 64;
      m->dirs = xrealloc (m->dirs, m->capdirs * sizeof *m->dirs);
    }
  m->dirs[m->ndirs++] = (struct mat_dir){ e, fd };
}

static int
add_dir (struct ov_mat *m, const struct ov_entry *e, int dirfd, const char *name, ov_error_t *err)
{
  if (mkdirat (dirfd, name, 0700) < 0)
    {
      struct stat st;
      int e0 = errno;
      if (e0 != EEXIST || !(m->flags & (OV_MAT_MERGE | OV_MAT_FORCE))
          || fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
        return ov_error_set (err, 0, e0, "create directory %s%s", name,
                             e0 == EEXIST ? " (use --force to merge)" : "");
    }
  int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "open directory %s", name);
  ov_mat_adopt_dir (m, fd, e);
  if (m->ntrees == m->captrees)
    {
      /* Entries of loaded trees are pointed to; grow an array of trees
       * whose entry arrays never move. */
      m->captrees = m->captrees ? m->captrees * 2 : 64;
      m->trees = xrealloc (m->trees, m->captrees * sizeof *m->trees);
    }
  struct ov_tree *t = &m->trees[m->ntrees];
  if (tree_load (m->s, &e->oid, t, err) < 0)
    return -1;
  m->ntrees++;
  const struct ov_entry *ents = t->e;
  size_t n = t->n;
  if (tree_prefetch_subtrees (m->s, t, err) < 0)
    return ov_error_prefix (err, "%s", name);
  for (size_t i = 0; i < n; i++)
    if (add_entry (m, &ents[i], fd, ents[i].name, err) < 0)
      return ov_error_prefix (err, "%s", name);
  return 0;
}

static int
add_entry (struct ov_mat *m, const struct ov_entry *e, int dirfd, const char *name,
           ov_error_t *err)
{
  switch (e->type)
    {
    case OV_DIR:
      return add_dir (m, e, dirfd, name, err);
    case OV_REG:
      if (m->nfiles == m->capfiles)
        {
          m->capfiles = m->capfiles ? m->capfiles * 2 : 1024;
          m->files = xrealloc (m->files, m->capfiles * sizeof *m->files);
        }
      m->files[m->nfiles++] = (struct mat_file){ .e = e, .dirfd = dirfd };
      m->progress->total_files++;
      m->progress->total_bytes += e->size;
      return 0;
    default:
      return make_node (m, e, dirfd, name, err);
    }
}

int
ov_mat_add (struct ov_mat *m, const struct ov_entry *e, int dirfd, const char *name,
            ov_error_t *err)
{
  struct ov_entry *top = xmalloc (sizeof *top);
  entry_copy (top, e);
  free (top->name);
  top->name = xstrdup (name);
  m->tops = xrealloc (m->tops, (m->ntops + 1) * sizeof *m->tops);
  m->tops[m->ntops++] = top;
  return add_entry (m, top, dirfd, top->name, err);
}

/* ---- copies ---- */

struct slot
{
  struct ov_uring_op op;
  struct ov_uring_op read_op;   /* the read's CQE carries the length */
  struct ov_uring_op create_op; /* only a file we created may be removed */
  struct ov_uring_op write_op;  /* a short write means a full disk */
  bool created;
  struct ov_mat *m;
  struct mat_file *f;
  int pending; /* CQEs still to come for this chain */
  int failed_res;
  bool cancelled; /* a short read breaks the chain without an error */
  int read_res, write_res;
  uint8_t *buf;
  int index;
};

static int
verify_buf (const struct ov_entry *e, const uint8_t *buf, size_t n, ov_error_t *err)
{
  struct ov_oid got;
  ov_hash (buf, n, &got);
  if (n != e->size || memcmp (got.b, e->oid.b, 16) != 0)
    {
      char hex[OV_OID_STR];
      oid_hex (&e->oid, hex);
      return ov_corrupt (err, "object %s is corrupt (content does not match its hash)", hex);
    }
  return 0;
}

static int
chain_done (struct ov_uring_op *op, int res, ov_error_t *err)
{
  struct slot *sl = (struct slot *) op;
  sl->pending--;
  if (res < 0 && res != -ECANCELED && sl->failed_res == 0)
    sl->failed_res = res;
  if (res == -ECANCELED)
    sl->cancelled = true;
  if (sl->pending)
    return 0;
  struct mat_file *f = sl->f;
  sl->f = NULL;
  if (sl->created && (sl->failed_res || sl->cancelled))
    unlinkat (f->dirfd, f->e->name, 0);
  if (sl->cancelled && sl->failed_res == 0 && sl->write_res >= 0
      && (uint64_t) sl->write_res < f->e->size)
    return ov_error_set (err, OV_ENOSPACE, ENOSPC, "copy %s (%d of %" PRIu64 " bytes written)",
                         f->e->name, sl->write_res, f->e->size);
  if (sl->cancelled && sl->failed_res == 0)
    {
      char hex[OV_OID_STR];
      obj_name (f->e, hex);
      return ov_error_set (err, OV_ECORRUPT, 0, "object %s is truncated", hex);
    }
  if (sl->failed_res)
    {
      if (sl->failed_res == -EEXIST)
        return ov_error_set (err, OV_EGENERIC, EEXIST, "%s exists (use --force to replace it)",
                             f->e->name);
      return ov_error (err, -sl->failed_res, "copy %s", f->e->name);
    }
  if (verify_buf (f->e, sl->buf, sl->read_res, err) < 0)
    {
      unlinkat (f->dirfd, f->e->name, 0);
      return ov_error_prefix (err, "%s", f->e->name);
    }
  if (set_meta_at (f->dirfd, f->e->name, f->e, (f->e->mode & sl->m->umask) == 0, err) < 0)
    return -1;
  ov_progress_add (sl->m->progress, 1, f->e->size);
  return 0;
}

static int
create_done (struct ov_uring_op *op, int res, ov_error_t *err)
{
  struct slot *sl = (struct slot *) ((char *) op - offsetof (struct slot, create_op));
  if (res >= 0)
    sl->created = true;
  return chain_done (&sl->op, res, err);
}

static int
write_done (struct ov_uring_op *op, int res, ov_error_t *err)
{
  struct slot *sl = (struct slot *) ((char *) op - offsetof (struct slot, write_op));
  sl->write_res = res;
  return chain_done (&sl->op, res, err);
}

static int
read_done (struct ov_uring_op *op, int res, ov_error_t *err)
{
  struct slot *sl = (struct slot *) ((char *) op - offsetof (struct slot, read_op));
  if (res >= 0)
    {
      sl->read_res = res;
      /* the kernel filled the registered buffer: tell valgrind, which cannot see io_uring */
      VALGRIND_MAKE_MEM_DEFINED (sl->buf, res);
    }
  return chain_done (&sl->op, res, err);
}

/* Four linked SQEs: read the object from its pack; create the target,
 * write, close. A failed link cancels the rest of the chain (-ECANCELED). */
static int
queue_chain (struct ov_uring *u, struct slot *sl, struct mat_file *f, const struct ov_blob_loc *loc)
{
  sl->f = f;
  sl->pending = 4;
  sl->failed_res = 0;
  sl->cancelled = false;
  sl->created = false;
  sl->read_res = -1;
  sl->write_res = -1;
  unsigned out = sl->index;
  struct ov_uring_op *ops[4] = { &sl->read_op, &sl->create_op, &sl->write_op, &sl->op };
  struct io_uring_sqe *sqe[4];
  if (ov_uring_chain (u, ops, 4, sqe) < 0)
    return -1;
  io_uring_prep_read_fixed (sqe[0], loc->fd, sl->buf, f->e->size, loc->off, sl->index);
  sqe[0]->flags |= IOSQE_IO_LINK;
  io_uring_prep_openat_direct (sqe[1], f->dirfd, f->e->name,
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, f->e->mode & 0777, out);
  sqe[1]->flags |= IOSQE_IO_LINK;
  io_uring_prep_write_fixed (sqe[2], out, sl->buf, f->e->size, 0, sl->index);
  sqe[2]->flags |= IOSQE_IO_LINK | IOSQE_FIXED_FILE;
  io_uring_prep_close_direct (sqe[3], out);
  /* The file names are read when the SQEs are submitted. */
  return ov_uring_submit (u);
}

static int
copy_small (struct ov_mat *m, struct ov_uring *u, struct mat_file **todo, size_t n,
            ov_error_t *err)
{
  if (n == 0)
    return 0;
  size_t nslots = n < SLOTS ? n : SLOTS;
  uint8_t *mem = xmalloc (nslots * SLOT_BUF);
  struct iovec *iov = xcalloc (nslots, sizeof *iov);
  struct slot *slots = xcalloc (nslots, sizeof *slots);
  for (size_t i = 0; i < nslots; i++)
    {
      slots[i] = (struct slot){ .op.done = chain_done, .read_op.done = read_done,
                                .create_op.done = create_done, .write_op.done = write_done, .m = m,
                                .buf = mem + i * SLOT_BUF, .index = i };
      iov[i] = (struct iovec){ slots[i].buf, SLOT_BUF };
    }
  int r = io_uring_register_buffers (&u->ring, iov, nslots);
  if (r == 0)
    r = io_uring_register_files_sparse (&u->ring, nslots);
  if (r < 0)
    {
      ov_error (err, -r, "io_uring register");
      goto out;
    }
  size_t next = 0;
  while (next < n && u->err == NULL)
    {
      /* find a free slot, reaping completions until one frees up */
      struct slot *free_slot = NULL;
      for (size_t i = 0; i < nslots && !free_slot; i++)
        if (slots[i].f == NULL)
          free_slot = &slots[i];
      if (free_slot == NULL)
        {
          struct io_uring_cqe *cqe;
          if (ov_uring_submit (u) < 0)
            break;
          if (io_uring_wait_cqe (&u->ring, &cqe) == 0)
            {
              struct ov_uring_op *op = io_uring_cqe_get_data (cqe);
              int res = cqe->res;
              io_uring_cqe_seen (&u->ring, cqe);
              u->inflight--;
              if (op && u->err == NULL)
                op->done (op, res, &u->err);
            }
          continue;
        }
      struct mat_file *f = todo[next++];
      struct ov_blob_loc loc;
      if (ov_store_blob_loc (m->s, &f->e->oid, f->e->size, &loc, &u->err) < 0)
        {
          ov_error_prefix (&u->err, "%s", f->e->name);
          break;
        }
      if ((m->flags & OV_MAT_FORCE) && unlinkat (f->dirfd, f->e->name, 0) < 0 && errno != ENOENT)
        {
          ov_error (&u->err, errno, "replace %s", f->e->name);
          break;
        }
      int q = queue_chain (u, free_slot, f, &loc);
      ov_blob_loc_release (&loc); /* a loose object's fd is only needed until submission */
      if (q < 0)
        break;
    }
  r = ov_uring_drain (u, err);
  io_uring_unregister_files (&u->ring);
  io_uring_unregister_buffers (&u->ring);
out:
  free (slots);
  free (iov);
  free (mem);
  return r < 0 ? -1 : 0;
}

int
ov_export_content (struct ov_store *s, const struct ov_entry *e, int fd, ov_error_t *err)
{
  struct ov_blob_loc loc;
  if (ov_store_blob_loc (s, &e->oid, e->size, &loc, err) < 0)
    return -1;
  size_t bufsz = e->size < CHUNK ? e->size + 1 : CHUNK;
  cleanup_free uint8_t *buf = xmalloc (bufsz);
  struct ov_hasher h;
  ov_hasher_init (&h);
  uint64_t total = 0;
  int ret = 0;
  /* one byte past the recorded size tells a loose object that grew */
  for (uint64_t want = e->size + loc.loose; total < want;)
    {
      size_t ask = want - total < bufsz ? want - total : bufsz;
      ssize_t n = pread_all (loc.fd, buf, ask, loc.off + total);
      if (n < 0)
        {
          ret = ov_error (err, errno, "read object from %s", loc.where);
          break;
        }
      if (n == 0)
        break;
      ov_hasher_update (&h, buf, n);
      total += n;
      if (write_all (fd, buf, n) < 0)
        {
          ret = ov_error (err, errno, "write");
          break;
        }
    }
  ov_blob_loc_release (&loc);
  struct ov_oid got;
  ov_hasher_final (&h, &got);
  ov_hasher_free (&h);
  if (ret == 0 && (total != e->size || memcmp (got.b, e->oid.b, 16)))
    {
      char hex[OV_OID_STR];
      oid_hex (&e->oid, hex);
      return ov_corrupt (err, "object %s is corrupt (content does not match its hash)", hex);
    }
  return ret;
}

struct big_ctx
{
  struct ov_mat *m;
  struct mat_file **todo;
};

static int
copy_big_one (size_t i, void *ctx, ov_error_t *err)
{
  struct big_ctx *b = ctx;
  struct mat_file *f = b->todo[i];
  int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  if ((b->m->flags & OV_MAT_FORCE) && unlinkat (f->dirfd, f->e->name, 0) < 0 && errno != ENOENT)
    return ov_error (err, errno, "replace %s", f->e->name);
  cleanup_close int fd = openat (f->dirfd, f->e->name, flags, 0600);
  if (fd < 0 && errno == EEXIST)
    return ov_error_set (err, OV_EGENERIC, EEXIST, "%s exists (use --force to replace it)",
                         f->e->name);
  if (fd < 0)
    return ov_error (err, errno, "create %s", f->e->name);
  if (ov_export_content (b->m->s, f->e, fd, err) < 0 || set_meta_fd (fd, f->e->name, f->e, err) < 0)
    {
      unlinkat (f->dirfd, f->e->name, 0);
      return ov_error_prefix (err, "%s", f->e->name);
    }
  ov_progress_add (b->m->progress, 1, f->e->size);
  return 0;
}

/* Hardlink groups: the first member is written, the rest link to it. */
static void
group_links (struct ov_mat *m)
{
  size_t cap = 64;
  while (cap < m->nfiles * 2)
    cap *= 2;
  struct mat_file **tab = xcalloc (cap, sizeof *tab);
  for (size_t i = 0; i < m->nfiles; i++)
    {
      struct mat_file *f = &m->files[i];
      if (f->e->link_id == 0)
        continue;
      size_t h = (f->e->link_id * 0x9e3779b97f4a7c15ull) & (cap - 1);
      while (tab[h] && tab[h]->e->link_id != f->e->link_id)
        h = (h + 1) & (cap - 1);
      if (tab[h] == NULL)
        tab[h] = f;
      else
        f->leader = tab[h];
    }
  free (tab);
}

/* Small files are copied by one ring per thread, each thread taking a
 * contiguous run of the list (files of a directory stay together, so the
 * threads mostly work in different directories). */
struct shard
{
  struct ov_mat *m;
  struct mat_file **files;
  size_t n;
  ov_error_t err;
};

static void *
shard_run (void *arg)
{
  struct shard *sh = arg;
  struct ov_uring u;
  if (ov_uring_init (&u, RING_DEPTH, &sh->err) < 0)
    return NULL;
  copy_small (sh->m, &u, sh->files, sh->n, &sh->err);
  ov_uring_exit (&u);
  return NULL;
}

static int
copy_small_threads (struct ov_mat *m, struct mat_file **todo, size_t n, ov_error_t *err)
{
  if (n == 0)
    return 0;
  int nt = ov_pool_threads () / 2;
  if (nt < 1)
    nt = 1;
  if ((size_t) nt > n / 64 + 1)
    nt = n / 64 + 1;
  struct shard *sh = xcalloc (nt, sizeof *sh);
  pthread_t *th = xcalloc (nt, sizeof *th);
  size_t per = (n + nt - 1) / nt;
  for (int i = 0; i < nt; i++)
    {
      size_t lo = i * per, hi = lo + per < n ? lo + per : n;
      sh[i] = (struct shard){ m, todo + lo, lo < n ? hi - lo : 0, NULL };
    }
  int started = 0;
  for (int i = 1; i < nt; i++)
    if (pthread_create (&th[i], NULL, shard_run, &sh[i]) == 0)
      started = i;
    else
      shard_run (&sh[i]);
  shard_run (&sh[0]);
  for (int i = 1; i <= started; i++)
    pthread_join (th[i], NULL);
  int r = 0;
  for (int i = 0; i < nt; i++)
    if (sh[i].err)
      {
        if (r == 0 && *err == NULL)
          *err = sh[i].err;
        else
          ov_error_free (&sh[i].err);
        r = -1;
      }
  free (sh);
  free (th);
  return r;
}

int
ov_mat_finish (struct ov_mat *m, ov_error_t *err)
{
  group_links (m);
  int r = prefetch_files (m, err);
  struct mat_file **small = xcalloc (m->nfiles + 1, sizeof *small);
  struct mat_file **big = xcalloc (m->nfiles + 1, sizeof *big);
  size_t nsmall = 0, nbig = 0;
  for (size_t i = 0; i < m->nfiles; i++)
    {
      struct mat_file *f = &m->files[i];
      if (f->leader)
        continue;
      /* the chain needs an exact, non-empty read */
      if (f->e->size > 0 && f->e->size <= SLOT_BUF)
        small[nsmall++] = f;
      else
        big[nbig++] = f;
    }
  if (r == 0)
    r = copy_small_threads (m, small, nsmall, err);
  if (r == 0 && nbig)
    {
      struct big_ctx b = { m, big };
      r = ov_pool_run (nbig, copy_big_one, &b, err);
    }
  free (small);
  free (big);
  for (size_t i = 0; r == 0 && i < m->nfiles; i++)
    {
      struct mat_file *f = &m->files[i];
      if (f->leader == NULL)
        continue;
      const char *to = f->e->name;
      if ((m->flags & OV_MAT_FORCE) && unlinkat (f->dirfd, to, 0) < 0 && errno != ENOENT)
        r = ov_error (err, errno, "replace %s", to);
      else if (linkat (f->leader->dirfd, f->leader->e->name, f->dirfd, to, 0) < 0)
        r = ov_error (err, errno, "hardlink %s to %s", to, f->leader->e->name);
      else
        ov_progress_add (m->progress, 1, f->e->size);
    }
  for (size_t i = m->ndirs; i-- > 0;)
    {
      struct mat_dir *d = &m->dirs[i];
      if (r == 0)
        r = set_meta_fd (d->fd, d->e->name ? d->e->name : ".", d->e, err);
      close (d->fd);
      d->fd = -1;
    }
  return r;
}

int
ov_materialize (struct ov_store *s, const struct ov_entry *e, int dirfd, const char *name,
                int flags, struct ov_progress *progress, ov_error_t *err)
{
  struct ov_mat *m = ov_mat_new (s, flags, progress);
  int r = ov_mat_add (m, e, dirfd, name, err);
  if (r == 0)
    r = ov_mat_finish (m, err);
  ov_mat_free (m);
  return r;
}
