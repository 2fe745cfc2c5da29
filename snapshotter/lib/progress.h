/* Progress on stderr for long work: files, bytes and rate, redrawn a few
 * times a second once the work has taken over a second, and only when
 * stderr is a terminal. Counters are updated from worker threads. */
#ifndef OVSNAP_PROGRESS_H
#define OVSNAP_PROGRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ov_progress
{
  const char *what;
  atomic_uint_fast64_t files, bytes;
  uint64_t total_files, total_bytes;
  bool active;
  atomic_bool stop;
  pthread_t thread;
  double start;
};

void ov_progress_start (struct ov_progress *p, const char *what);
void ov_progress_add (struct ov_progress *p, uint64_t files, uint64_t bytes);
void ov_progress_end (struct ov_progress *p);

#endif
