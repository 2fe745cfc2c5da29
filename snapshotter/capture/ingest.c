#include "ingest.h"
#include "pool.h"
#include "xattr.h"

#include <sys/xattr.h>

#include <dirent.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#define STABLE_TRIES 5

struct file_job
{
  struct ov_change *c;
  int dirfd;
  struct ov_change *leader; /* hardlink: same inode as this earlier file */
  struct stat st;           /* what the walk saw, or (path set) the job's fstat */
  char *path;               /* set: not stat'ed by the walk (see walk_dir) */
};

struct link_seen
{
  dev_t dev;
  ino_t ino;
  struct ov_change *leader;
  struct link_seen *next;
};

struct walk
{
  struct ov_store *s;
  struct file_job *jobs;
  size_t njobs, capjobs;
  int *dirfds;
  size_t ndirfds, capdirfds;
  struct link_seen *links[4096];
  struct ov_progress *progress;
  struct ov_put_stats stats;
  const struct ov_ingest_opts *opts;
};

static const struct ov_ingest_opts plain_opts;

/* One read buffer per thread, kept between files: a malloc and free per
 * file let glibc hand the pages back and fault them in again, four page
 * faults for every 16 KiB file. Freed when the thread exits. */
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

struct read_buf
{
  size_t cap;
  uint8_t data[];
};

static void
buf_key_init (void)
{
  pthread_key_create (&buf_key, free);
}

static uint8_t *
read_buffer (size_t n)
{
  pthread_once (&buf_once, buf_key_init);
  struct read_buf *b = pthread_getspecific (buf_key);
  if (b == NULL || b->cap < n)
    {
      size_t cap = n < (64u << 10) ? 64u << 10 : n;
      free (b);
      b = xmalloc (sizeof *b + cap);
      b->cap = cap;
      pthread_setspecific (buf_key, b);
    }
  return b->data;
}

static char *
child_path (const char *dir, const char *name)
{
  return dir[0] ? xasprintf ("%s/%s", dir, name) : xstrdup (name);
}

static void
meta_from_stat (struct ov_entry *e, const struct stat *st)
{
  e->type = ov_type_from_mode (st->st_mode);
  e->mode = st->st_mode;
  e->uid = st->st_uid;
  e->gid = st->st_gid;
  e->mtime_sec = st->st_mtim.tv_sec;
  e->mtime_nsec = st->st_mtim.tv_nsec;
  if (e->type == OV_CHR || e->type == OV_BLK)
    e->rdev = st->st_rdev;
}

static bool
same_version (const struct stat *a, const struct stat *b)
{
  return a->st_ino == b->st_ino && a->st_size == b->st_size
         && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
         && a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int
ov_ingest_file (struct ov_store *s, int fd, const char *what, const struct stat *seen,
                struct ov_entry *e, struct ov_put_stats *stats, ov_error_t *err)
{
  for (int attempt = 0;; attempt++)
    {
      /* "before" may be the walk's lstat: the fstat after the read then
       * also proves the fd is the file the walk saw (same inode) */
      struct stat before, after;
      if (seen && attempt == 0)
        before = *seen;
      else if (fstat (fd, &before) < 0)
        return ov_error (err, errno, "stat %s", what);
      if (!S_ISREG (before.st_mode))
        return ov_error (err, EINVAL, "%s is no longer a regular file", what);
      struct ov_put_stats st = { 0 };
      uint64_t size;
      if (before.st_size <= OV_SMALL_BLOB)
        {
          /* a file that grew or shrank meanwhile fails the fstat check below */
          uint8_t *buf = read_buffer (before.st_size + 1);
          ssize_t n = before.st_size ? pread_all (fd, buf, before.st_size, 0) : 0;
          if (n < 0)
            return ov_error (err, errno, "read %s", what);
          if (fstat (fd, &after) < 0)
            return ov_error (err, errno, "stat %s", what);
          if (n != before.st_size || !same_version (&before, &after))
            goto changed;
          if (ov_store_put_blob_mem (s, buf, n, &e->oid, &st, err) < 0)
            return ov_error_prefix (err, "%s", what);
          size = n;
        }
      else
        {
          if (lseek (fd, 0, SEEK_SET) < 0)
            return ov_error (err, errno, "seek %s", what);
          if (ov_store_put_blob_fd (s, fd, &e->oid, &size, &st, err) < 0)
            return ov_error_prefix (err, "%s", what);
          if (fstat (fd, &after) < 0)
            return ov_error (err, errno, "stat %s", what);
          if (size != (uint64_t) before.st_size || !same_version (&before, &after))
            goto changed;
        }
      meta_from_stat (e, &after);
      e->size = size;
      if (stats)
        {
          __atomic_add_fetch (&stats->stored, st.stored, __ATOMIC_RELAXED);
          __atomic_add_fetch (&stats->deduped, st.deduped, __ATOMIC_RELAXED);
          __atomic_add_fetch (&stats->bytes_stored, st.bytes_stored, __ATOMIC_RELAXED);
        }
      return 0;
    changed:
      if (attempt + 1 >= STABLE_TRIES)
        return ov_error (err, EAGAIN, "%s keeps changing while it is read", what);
    }
}

static int
file_job_run (size_t i, void *ctx, ov_error_t *err)
{
  struct walk *w = ctx;
  struct file_job *j = &w->jobs[i];
  if (j->leader)
    return 0;
  int fd = openat (j->dirfd, j->c->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM)
    fd = openat (j->dirfd, j->c->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 && w->opts->upper
      && (errno == ENOENT || errno == ELOOP || errno == ENXIO || errno == EACCES))
    {
      /* gone, or a symlink, socket or device node (the capture's view of
       * an upper is nodev: EACCES) now, since readdir or the walk's stat:
       * the next commit sees what became of it (as the walk does with what
       * vanishes) */
      j->c->op = OV_CH_KEEP;
      return 0;
    }
  if (fd < 0)
    return ov_error (err, errno, "open %s", j->c->name);
  if (j->path)
    {
      if (fstat (fd, &j->st) < 0)
        {
          int e = errno;
          close (fd);
          return ov_error (err, e, "stat %s", j->c->name);
        }
      if (!S_ISREG (j->st.st_mode) && w->opts->upper)
        {
          close (fd);
          j->c->op = OV_CH_KEEP;
          return 0;
        }
    }
  int r = ov_ingest_file (w->s, fd, j->c->name, &j->st, &j->c->entry, &w->stats, err);
  if (r == 0)
    r = xattrs_read (fd, -1, j->c->name, &j->c->entry, NULL, err);
  close (fd);
  if (r == 0)
    ov_progress_add (w->progress, 1, j->c->entry.size);
  return r;
}

static struct ov_change *
note_link (struct walk *w, const struct stat *st, struct ov_change *c)
{
  size_t h = (st->st_ino ^ st->st_dev * 31) % ARRAY_SIZE (w->links);
  for (struct link_seen *l = w->links[h]; l; l = l->next)
    if (l->ino == st->st_ino && l->dev == st->st_dev)
      return l->leader;
  struct link_seen *l = xcalloc (1, sizeof *l);
  l->dev = st->st_dev;
  l->ino = st->st_ino;
  l->leader = c;
  l->next = w->links[h];
  w->links[h] = l;
  return NULL;
}

static struct file_job *
add_job (struct walk *w, struct ov_change *c, int dirfd, struct ov_change *leader)
{
  if (w->njobs == w->capjobs)
    {
      w->capjobs = w->capjobs ? w->capjobs * 2 : 1024;
      w->jobs = xrealloc (w->jobs, w->capjobs * sizeof *w->jobs);
    }
  struct file_job *j = &w->jobs[w->njobs++];
  memset (j, 0, sizeof *j);
  j->c = c;
  j->dirfd = dirfd;
  j->leader = leader;
  return j;
}

static int
change_name_cmp (const void *a, const void *b)
{
  return strcmp (((const struct ov_change *) a)->name, ((const struct ov_change *) b)->name);
}

static int walk_dir (struct walk *w, int dfd, struct ov_change *dir, const char *path,
                     bool *opaque, ov_error_t *err);

/* One directory entry, already lstat'ed. In an overlay upper dir, entries
 * whose signature matches the previous commit's manifest are KEEP: neither
 * read nor re-applied over what newer writers committed. */
static int
walk_entry (struct walk *w, int dfd, struct ov_change *c, const struct stat *st, const char *path,
            ov_error_t *err)
{
  const struct ov_ingest_opts *o = w->opts;
  struct ov_sig sig;
  sig_from_stat (&sig, st);
  const struct ov_sig *prev = manifest_get (o->prev, path);
  bool unchanged = prev && sig_eq (prev, &sig);
  c->op = OV_CH_SET;
  meta_from_stat (&c->entry, st);
  if (o->upper && S_ISCHR (st->st_mode) && st->st_rdev == 0)
    {
      /* an overlay whiteout: the path was deleted */
      c->op = unchanged ? OV_CH_KEEP : OV_CH_DELETE;
      entry_free (&c->entry);
      c->entry.name = NULL;
    }
  else
    switch (c->entry.type)
      {
      case OV_REG:
        if (unchanged)
          c->op = OV_CH_KEEP;
        else
          {
            add_job (w, c, dfd, st->st_nlink > 1 ? note_link (w, st, c) : NULL)->st = *st;
            w->progress->total_files++;
          }
        break;
      case OV_DIR:
        {
          int sub = openat (dfd, c->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            return ov_error (err, errno, "open directory %s", c->name);
          c->op = OV_CH_DIR;
          bool opaque;
          if (walk_dir (w, sub, c, path, &opaque, err) < 0)
            return -1;
          if (o->upper)
            {
              sig.opaque = opaque;
              c->keep_meta = unchanged;
              /* an opaque dir replaces the committed one once, not at every commit */
              c->opaque = opaque && !(prev && prev->opaque);
            }
          break;
        }
      case OV_LNK:
        {
          char target[OV_TARGET_MAX + 1];
          ssize_t n = readlinkat (dfd, c->name, target, sizeof target);
          if (n < 0)
            return ov_error (err, errno, "read symlink %s", c->name);
          if (n == 0 || n > OV_TARGET_MAX)
            return ov_error (err, ENAMETOOLONG, "symlink %s", c->name);
          c->entry.target = xstrndup (target, n);
          c->entry.size = n;
          if (xattrs_read (-1, dfd, c->name, &c->entry, NULL, err) < 0)
            return -1;
          if (unchanged)
            c->op = OV_CH_KEEP;
          break;
        }
      default: /* fifo, devices, sockets: metadata only */
        if (unchanged)
          c->op = OV_CH_KEEP;
        break;
      }
  if (o->next)
    manifest_put (o->next, path, &sig);
  return 0;
}

static int
walk_dir (struct walk *w, int dfd, struct ov_change *dir, const char *path, bool *opaque,
          ov_error_t *err)
{
  const char *what = path[0] ? path : ".";
  if (w->ndirfds == w->capdirfds)
    {
      w->capdirfds = w->capdirfds ? w->capdirfds * 2 : 64;
      w->dirfds = xrealloc (w->dirfds, w->capdirfds * sizeof *w->dirfds);
    }
  w->dirfds[w->ndirfds++] = dfd;
  struct stat st;
  if (fstat (dfd, &st) < 0)
    return ov_error (err, errno, "stat directory %s", what);
  meta_from_stat (&dir->entry, &st);
  if (xattrs_read (dfd, -1, what, &dir->entry, opaque, err) < 0)
    return -1;

  /* getdents64 on the directory's own fd: no dup and no DIR stream to set up */
  size_t cap = 0;
  cleanup_free char *dbuf = xmalloc (32768);
  for (;;)
    {
      ssize_t got = getdents64 (dfd, dbuf, 32768);
      if (got < 0)
        return ov_error (err, errno, "read directory %s", what);
      if (got == 0)
        break;
      for (ssize_t off = 0; off < got;)
        {
          struct dirent64 *de = (struct dirent64 *) (dbuf + off);
          off += de->d_reclen;
          if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
            continue;
          if (dir->n == cap)
            {
              cap = cap ? cap * 2 : 16;
              dir->kids = xrealloc (dir->kids, cap * sizeof *dir->kids);
            }
          struct ov_change *c = &dir->kids[dir->n++];
          memset (c, 0, sizeof *c);
          c->name = xstrdup (de->d_name);
          c->entry.mode = de->d_type == DT_REG ? S_IFREG : 0; /* a hint, for below */
        }
    }
  dir->cap = dir->n;
  if (dir->n > 1)
    qsort (dir->kids, dir->n, sizeof *dir->kids, change_name_cmp);
  /* The kids array is final now, so jobs may point into it. */
  for (size_t i = 0; i < dir->n; i++)
    {
      struct ov_change *c = &dir->kids[i];
      char *cp = child_path (path, c->name);
      /* A regular file that the previous commit did not record is read in
       * any case: its stat comes from the open fd in the read job, off
       * this one-thread walk (the lstat of every file was half its time). */
      bool reg = c->entry.mode == S_IFREG;
      c->entry.mode = 0;
      if (reg && manifest_get (w->opts->prev, cp) == NULL)
        {
          c->op = OV_CH_SET;
          add_job (w, c, dfd, NULL)->path = cp;
          w->progress->total_files++;
          continue;
        }
      if (fstatat (dfd, c->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          /* gone since readdir (a container keeps writing): the next
           * commit sees what became of it */
          int e = errno;
          free (cp);
          if (e == ENOENT && w->opts->upper)
            {
              c->op = OV_CH_KEEP;
              continue;
            }
          return ov_error (err, e, "stat %s/%s", what, c->name);
        }
      int r = walk_entry (w, dfd, c, &st, cp, err);
      free (cp);
      if (r < 0)
        return ov_error_prefix (err, "%s", what);
    }
  return 0;
}

/* What the walk left to the read jobs for files it did not stat: their
 * manifest signature and hardlink groups, in walk order. */
static void
files_stated_late (struct walk *w)
{
  for (size_t i = 0; i < w->njobs; i++)
    {
      struct file_job *j = &w->jobs[i];
      if (j->path == NULL || j->c->op != OV_CH_SET)
        continue;
      /* a later link of the same inode was read like any file; assign_links
       * gives it the leader's entry */
      if (j->st.st_nlink > 1)
        j->leader = note_link (w, &j->st, j->c);
      if (w->opts->next)
        {
          struct ov_sig sig;
          sig_from_stat (&sig, &j->st);
          manifest_put (w->opts->next, j->path, &sig);
        }
    }
}

/* Hardlink groups: members found twice or more share a fresh link id and
 * the first one's entry (replacing what a member read itself). */
static void
assign_links (struct walk *w, uint64_t *next_link_id)
{
  for (size_t i = 0; i < w->njobs; i++)
    {
      struct file_job *j = &w->jobs[i];
      if (j->leader == NULL)
        continue;
      struct ov_entry *le = &j->leader->entry;
      if (le->link_id == 0)
        le->link_id = (*next_link_id)++;
      struct ov_entry *e = &j->c->entry;
      e->oid = le->oid;
      e->size = le->size;
      e->link_id = le->link_id;
      e->mode = le->mode;
      e->uid = le->uid;
      e->gid = le->gid;
      e->mtime_sec = le->mtime_sec;
      e->mtime_nsec = le->mtime_nsec;
      entry_clear_xattrs (e);
      for (int x = 0; x < le->nxattrs; x++)
        entry_add_xattr (e, le->xattrs[x].name, le->xattrs[x].value, le->xattrs[x].len);
    }
}

int
ov_ingest (struct ov_store *s, int dirfd, const char *path, const struct ov_ingest_opts *opts,
           uint64_t *next_link_id, struct ov_change *out, struct ov_progress *progress,
           ov_error_t *err)
{
  struct ov_progress quiet = { 0 };
  struct walk w = { .s = s, .progress = progress ? progress : &quiet,
                    .opts = opts ? opts : &plain_opts };
  memset (out, 0, sizeof *out);
  struct stat st;
  int r = -1;
  int fd = openat (dirfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return ov_error (err, errno, "open %s", path);
  if (fstat (fd, &st) < 0)
    {
      close (fd);
      return ov_error (err, errno, "stat %s", path);
    }
  if (S_ISDIR (st.st_mode))
    {
      out->op = OV_CH_DIR;
      bool root_opaque;
      r = walk_dir (&w, fd, out, "", &root_opaque, err);
      if (r == 0 && w.opts->upper)
        {
          struct ov_sig sig;
          sig_from_stat (&sig, &st);
          const struct ov_sig *prev = manifest_get (w.opts->prev, "");
          out->keep_meta = prev && sig_eq (prev, &sig);
          if (w.opts->next)
            manifest_put (w.opts->next, "", &sig);
        }
      ov_trace ("ingest: walked");
      if (r == 0)
        r = ov_pool_run (w.njobs, file_job_run, &w, err);
      if (r == 0)
        files_stated_late (&w);
      ov_trace ("ingest: files read");
    }
  else if (S_ISREG (st.st_mode))
    {
      out->op = OV_CH_SET;
      r = ov_ingest_file (s, fd, path, &st, &out->entry, &w.stats, err);
      if (r == 0)
        r = xattrs_read (fd, -1, path, &out->entry, NULL, err);
      close (fd);
      ov_progress_add (w.progress, 1, out->entry.size);
    }
  else
    {
      close (fd);
      r = ov_error_set (err, OV_EUSAGE, 0, "%s: only regular files and directories can be put", path);
    }
  if (r == 0)
    assign_links (&w, next_link_id);
  struct ov_ingest_fds fds = { w.dirfds, w.ndirfds };
  if (w.opts->dirfds && r == 0)
    *w.opts->dirfds = fds; /* the caller closes them when it has time */
  else
    ov_ingest_fds_close (&fds);
  for (size_t i = 0; i < w.njobs; i++)
    free (w.jobs[i].path);
  free (w.jobs);
  for (size_t i = 0; i < ARRAY_SIZE (w.links); i++)
    while (w.links[i])
      {
        struct link_seen *l = w.links[i];
        w.links[i] = l->next;
        free (l);
      }
  if (r < 0)
    change_free (out);
  return r;
}

void
ov_ingest_fds_close (struct ov_ingest_fds *f)
{
  for (size_t i = 0; i < f->n; i++)
    close (f->fd[i]);
  free (f->fd);
  memset (f, 0, sizeof *f);
}

int
ov_ingest_stream (struct ov_store *s, int fd, struct ov_entry *out, ov_error_t *err)
{
  memset (out, 0, sizeof *out);
  uint64_t size;
  if (ov_store_put_blob_fd (s, fd, &out->oid, &size, NULL, err) < 0)
    return ov_error_prefix (err, "standard input");
  int64_t now = now_ns ();
  out->type = OV_REG;
  out->mode = S_IFREG | 0644;
  out->uid = geteuid ();
  out->gid = getegid ();
  out->mtime_sec = now / 1000000000;
  out->mtime_nsec = now % 1000000000;
  out->size = size;
  return 0;
}
