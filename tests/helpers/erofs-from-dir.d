tests/helpers/erofs-from-dir: tests/helpers/erofs-from-dir.c \
 snapshotter/erofs/erofs.h snapshotter/lib/error.h snapshotter/lib/hash.h \
 snapshotter/lib/util.h
snapshotter/erofs/erofs.h:
snapshotter/lib/error.h:
snapshotter/lib/hash.h:
snapshotter/lib/util.h:
