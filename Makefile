# ovsnap: `make` builds, `make check` tests (normal and ASan+UBSan builds),
# `make install` honours PREFIX and DESTDIR.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
# the S3 module, where the binaries look for it (store/store-module.c)
MODULEDIR = $(patsubst %/,%,$(dir $(BINDIR)))/lib/ovsnap
PYTHONDIR ?= $(PREFIX)/lib/python3/dist-packages
DESTDIR ?=
B ?= build
BIN ?= snapshotter/ovsnap

PKGS := liburing mount libseccomp libxxhash json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# the S3 module's own libraries (only it links them: store/store-module.c says why)
S3_PKGS := libcurl libxml-2.0 libcrypto
S3_CFLAGS := $(shell pkg-config --cflags $(S3_PKGS) 2>/dev/null)
S3_LIBS := $(shell pkg-config --libs $(S3_PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -MMD -MP $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread
# the binaries export the engine's functions to the S3 module they may load
BIN_LDFLAGS := -rdynamic

# The engine, by concern (README: Architecture), and the front ends over it.
ENGINE_DIRS := lib erofs s3 store tree node capture attach maint
ENGINE := util error fault hash dir file proc progress pool record oidset \
	erofs erofs-write erofs-out \
	store store-local store-module pack \
	tree snapshot changeset diff replay heads volume path xattr edit \
	node layer image materialize uring trash \
	ingest sandbox manifest put \
	state attach commit reload mount busy nsexec agent \
	gc fsck reach
# The S3 backend and its client, built as a module (position-independent objects, $(B)/pic-*.o)
S3_MOD := s3 s3-xfer s3-xml s3-ops s3-multipart store-s3 s3-cache
S3_MOD_OBJS := $(S3_MOD:%=$(B)/pic-%.o)
S3_MODULE := $(B)/ovsnap-s3.so
SRC_DIRS := $(addprefix snapshotter/,$(ENGINE_DIRS) cli)
INCLUDES := $(addprefix -I,$(SRC_DIRS))
vpath %.c $(SRC_DIRS)
CLI := ovsnap cli-util cli-volume cli-put cli-get cli-ls cli-edit cli-diff cli-maint cli-attach \
	cli-snapshots snapdb ctree

HOOK := ovsnap-hook oci
HOOK_BIN ?= runtime-hook/ovsnap-hook
UNIT_DIR ?= tests/unit
EROFS_FROM_DIR ?= tests/helpers/erofs-from-dir

# The containerd snapshotter daemon (README: containerd snapshotter): a gRPC server on nghttp2
# (snapshotter/grpc) and the Snapshots service (snapshotter/containerd), with protobuf-c code
# generated at build time from Debian's containerd API sources (nothing generated is committed).
SNAPD_BIN ?= snapshotter/ovsnap-snapshotter
SNAPD := grpc-msg grpc-pb grpc-server snapdb layers-dir layers-tree ctree reaper snapshots filter \
	service main
SNAPD_DIRS := snapshotter/grpc snapshotter/containerd
vpath %.c $(SNAPD_DIRS)
GOSRC ?= /usr/share/gocode/src
PROTO_DIR := $(B)/proto
PROTOS := github.com/containerd/containerd/api/services/snapshots/v1/snapshots.proto \
	github.com/containerd/containerd/api/types/mount.proto gogoproto/gogo.proto \
	google/protobuf/empty.proto google/protobuf/field_mask.proto google/protobuf/timestamp.proto \
	google/protobuf/descriptor.proto
PROTO_OBJS := $(PROTOS:%.proto=$(PROTO_DIR)/%.pb-c.o)
SNAPD_OBJS := $(SNAPD:%=$(B)/%.o)
SNAPD_LIBS := $(shell pkg-config --libs libnghttp2 libprotobuf-c 2>/dev/null || echo -lnghttp2 -lprotobuf-c)

ENGINE_OBJS := $(ENGINE:%=$(B)/%.o)
HOOK_OBJS := $(HOOK:%=$(B)/hook-%.o)
CLI_OBJS := $(CLI:%=$(B)/%.o)

UNITS := test-records test-packs test-uring test-sessions test-pack-reads test-fork test-erofs test-s3

all: $(BIN) $(HOOK_BIN) $(SNAPD_BIN) $(S3_MODULE) runtime-hook/ovsnap-ctl $(UNITS:%=$(UNIT_DIR)/%) $(EROFS_FROM_DIR)

$(B)/libovsnap.a: $(ENGINE_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(B)/libovsnap-s3.a: $(S3_MOD_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(S3_MODULE): $(S3_MOD_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $^ $(S3_LIBS)

$(BIN): $(CLI_OBJS) $(B)/libovsnap.a
	$(CC) $(CFLAGS) $(LDFLAGS) $(BIN_LDFLAGS) -o $@ $^ $(LDLIBS)

$(HOOK_BIN): $(HOOK_OBJS) $(B)/libovsnap.a
	$(CC) $(CFLAGS) $(LDFLAGS) $(BIN_LDFLAGS) -o $@ $^ $(LDLIBS)

$(SNAPD_BIN): $(SNAPD_OBJS) $(PROTO_OBJS) $(B)/libovsnap.a
	$(CC) $(CFLAGS) $(LDFLAGS) $(BIN_LDFLAGS) -o $@ $^ $(LDLIBS) $(SNAPD_LIBS)

$(PROTO_DIR)/.stamp:
	rm -rf $(PROTO_DIR) && mkdir -p $(PROTO_DIR)
	protoc-c -I$(GOSRC) -I$(GOSRC)/github.com/gogo/protobuf -I/usr/include \
		--c_out=$(PROTO_DIR) $(PROTOS)
	touch $@

$(PROTO_DIR)/%.pb-c.c: $(PROTO_DIR)/.stamp ;
.PRECIOUS: $(PROTO_DIR)/%.pb-c.c

$(PROTO_DIR)/%.pb-c.o: $(PROTO_DIR)/%.pb-c.c
	$(CC) $(CFLAGS) -I$(PROTO_DIR) -c -o $@ $<

$(SNAPD_OBJS): INCLUDES += $(addprefix -I,$(SNAPD_DIRS)) -I$(PROTO_DIR)
# ovsnap snapshots ls reads the daemon's records (snapdb.c, ctree.c)
$(B)/cli-snapshots.o: INCLUDES += -Isnapshotter/containerd
$(SNAPD_OBJS): | $(PROTO_DIR)/.stamp

proto: $(PROTO_DIR)/.stamp

$(UNIT_DIR)/test-%: tests/unit/test-%.c $(B)/libovsnap.a
	$(CC) $(CFLAGS) $(INCLUDES) $(LDFLAGS) $(BIN_LDFLAGS) -o $@ $^ $(LDLIBS)

# the S3 client's unit test links the module's objects itself
$(UNIT_DIR)/test-s3: tests/unit/test-s3.c $(B)/libovsnap-s3.a $(B)/libovsnap.a
	$(CC) $(CFLAGS) $(INCLUDES) $(S3_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(S3_LIBS)

# the EROFS writer's test driver and benchmark (tests/t1050-erofs.sh)
$(EROFS_FROM_DIR): tests/helpers/erofs-from-dir.c $(B)/libovsnap.a
	$(CC) $(CFLAGS) $(INCLUDES) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# static: it is copied into containers that may have no libc of their own
runtime-hook/ovsnap-ctl: runtime-hook/ovsnap-ctl.c
	$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $<

$(B)/%.o: %.c | $(B)
	$(CC) $(CFLAGS) $(INCLUDES) -c -o $@ $<

$(B)/pic-%.o: %.c | $(B)
	$(CC) $(CFLAGS) $(INCLUDES) $(S3_CFLAGS) -fPIC -c -o $@ $<

# where store-module.c finds the S3 module: this build tree's, for binaries run from the source tree
$(B)/store-module.o: override CFLAGS += -DOV_SRC_ROOT='"$(realpath $(CURDIR))"' -DOV_BUILD_DIR='"$(realpath $(CURDIR))/$(B)"'

$(B)/hook-%.o: runtime-hook/%.c | $(B)
	$(CC) $(CFLAGS) $(INCLUDES) -c -o $@ $<

$(B):
	mkdir -p $@

# Address and undefined-behaviour sanitizers, in a separate build tree.
asan:
	$(MAKE) B=build-asan BIN=build-asan/ovsnap HOOK_BIN=build-asan/ovsnap-hook UNIT_DIR=build-asan EROFS_FROM_DIR=build-asan/erofs-from-dir \
		SNAPD_BIN=build-asan/ovsnap-snapshotter \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

# ThreadSanitizer, for the unit test that runs many operations in one process.
tsan:
	$(MAKE) B=build-tsan BIN=build-tsan/ovsnap HOOK_BIN=build-tsan/ovsnap-hook UNIT_DIR=build-tsan \
		CFLAGS="-O1 -g -fsanitize=thread" build-tsan/test-sessions

# A test build whose content hashes keep only 8 bits: collisions on every
# few objects, to show that a dedup hit never serves another file's bytes.
collide:
	$(MAKE) B=build-collide BIN=build-collide/ovsnap HOOK_BIN=build-collide/ovsnap-hook \
		SNAPD_BIN=build-collide/ovsnap-snapshotter UNIT_DIR=build-collide EROFS_FROM_DIR=build-collide/erofs-from-dir \
		CFLAGS="-O1 -g -DOVSNAP_TEST_HASH_BITS=8"

# containerd's snapshotter test suite and the reference proxy snapshotter (Go, GOPATH mode over
# Debian's golang-*-dev sources, offline; t3310 runs them): one Go build, cache in build/gocache
containerd-suite:
	scripts/build-containerd-suite build

check:
	scripts/install-deps
	$(MAKE) all asan collide tsan containerd-suite
	tests/check

install: $(BIN) $(HOOK_BIN) $(SNAPD_BIN) $(S3_MODULE) runtime-hook/ovsnap-ctl
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/ovsnap
	install -m 0755 $(HOOK_BIN) $(DESTDIR)$(BINDIR)/ovsnap-hook
	install -m 0755 runtime-hook/ovsnap-ctl $(DESTDIR)$(BINDIR)/ovsnap-ctl
	install -m 0755 $(SNAPD_BIN) $(DESTDIR)$(BINDIR)/ovsnap-snapshotter
	install -d $(DESTDIR)$(MODULEDIR)
	install -m 0644 $(S3_MODULE) $(DESTDIR)$(MODULEDIR)/ovsnap-s3.so
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/local/bin/ovsnap-snapshotter|$(BINDIR)/ovsnap-snapshotter|' \
		snapshotter/containerd/ovsnap-snapshotter.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/ovsnap-snapshotter.service
	install -d $(DESTDIR)$(PREFIX)/share/containers/oci/hooks.d
	sed 's|/usr/local/bin/ovsnap-hook|$(BINDIR)/ovsnap-hook|' runtime-hook/hooks.d/ovsnap.json \
		> $(DESTDIR)$(PREFIX)/share/containers/oci/hooks.d/ovsnap.json
	install -d $(DESTDIR)$(PYTHONDIR)
	install -m 0644 snapshotter/python/ovsnap.py $(DESTDIR)$(PYTHONDIR)/ovsnap.py

clean:
	rm -rf build build-asan build-collide build-tsan $(BIN) $(HOOK_BIN) $(SNAPD_BIN) runtime-hook/ovsnap-ctl \
		$(UNITS:%=tests/unit/%) tests/helpers/erofs-from-dir tests/unit/*.d tests/helpers/*.d

.PHONY: all asan collide tsan containerd-suite check install clean proto
-include $(wildcard $(B)/*.d)
