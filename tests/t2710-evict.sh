#!/bin/bash
# gc evicts an unused cache layer with one rename into the node's trash and leaves the unlink of its
# image to a detached reaper: the layer is gone from cache/layers when gc returns, its trash entry a
# moment later. A gc or a reaper killed in between leaves the entry for the next gc to reap. Which
# layers are in use the attachments say; an image mounted behind ovsnap's back (mount(8) here)
# keeps serving its mount after eviction.

test_description='gc evicts cache layers into the trash and reaps it in the background'
. "$(dirname "$0")/lib.sh"

trash_empty() { test -z "$(ls -A "$OVSNAP_ROOT/trash")"; }

# cached VOLUME DIR: mount VOLUME at DIR and unmount it again, leaving its layer cached and unused;
# prints the layer's name
cached() {
	mkdir -p "$2" &&
	ovsnap mount "$1" "$2" >/dev/null &&
	ovsnap umount "$2" &&
	ls "$OVSNAP_ROOT/cache/layers"
}

test_expect_success 'setup: a volume of a few files, one of them bigger than a pack holds' '
	mkdir src &&
	for i in 1 2 3; do echo "file $i" >src/f$i || return 1; done &&
	random_file src/big $((2 * 1048576)) &&
	random_file src/small 300000 &&
	ovsnap volume create v &&
	ovsnap put v src/ >/dev/null
'

test_expect_success 'gc: the layer leaves the cache at once, its trash entry is reaped after' '
	layer=$(cached v A) &&
	test -n "$layer" &&
	ovsnap --json gc >gc.json &&
	json_assert "d[\"cache_layers_evicted\"] == 1" <gc.json &&
	test_path_is_missing "$OVSNAP_ROOT/cache/layers/$layer" &&
	wait_for 30 trash_empty &&
	ovsnap fsck >/dev/null
'

test_expect_success 'a reaper killed before it unlinks: the layer waits in the trash, the next gc reaps it' '
	layer=$(cached v A) &&
	OVSNAP_FAULT=trash-reap ovsnap --json gc >gc.json &&
	json_assert "d[\"cache_layers_evicted\"] == 1" <gc.json &&
	test_path_is_missing "$OVSNAP_ROOT/cache/layers/$layer" &&
	ls "$OVSNAP_ROOT/trash" | grep "^layer\." >trash &&
	test_line_count = 1 trash &&
	grep "^layer\.$layer\." trash &&
	test -s "$OVSNAP_ROOT/trash/$(cat trash)/image" &&
	ovsnap --json gc >gc.json &&
	json_assert "d[\"cache_layers_evicted\"] == 0" <gc.json &&
	wait_for 30 trash_empty
'

test_expect_success 'gc killed between the rename and the reaper: the next gc reaps the layer' '
	layer=$(cached v A) &&
	OVSNAP_FAULT=gc-after-evict killed ovsnap gc &&
	test_path_is_missing "$OVSNAP_ROOT/cache/layers/$layer" &&
	ls "$OVSNAP_ROOT/trash" >trash &&
	grep "^layer\.$layer\." trash &&
	ovsnap gc >/dev/null &&
	wait_for 30 trash_empty &&
	ovsnap mount v A >/dev/null &&
	cmp src/big A/big &&
	ovsnap umount A
'

test_expect_success 'an image mounted outside any attachment: evicted, the mount keeps reading it' '
	layer=$(cached v A) &&
	mkdir -p M &&
	mount -t erofs -o ro "$OVSNAP_ROOT/cache/layers/$layer/image" M &&
	test_when_finished "umount $PWD/M 2>/dev/null; true" &&
	ovsnap --json gc >gc.json &&
	json_assert "d[\"cache_layers_evicted\"] == 1" <gc.json &&
	wait_for 30 trash_empty &&
	cmp src/small M/small &&
	umount M
'

test_expect_success 'a layer in use by an attachment stays; evicted once its attachment goes' '
	mkdir -p B &&
	ovsnap mount v B >/dev/null &&
	layer=$(ls "$OVSNAP_ROOT/cache/layers") &&
	ovsnap --json gc >gc.json &&
	json_assert "d[\"cache_layers_evicted\"] == 0" <gc.json &&
	cmp src/big B/big &&
	ovsnap umount B &&
	ovsnap --json gc >gc.json &&
	json_assert "d[\"cache_layers_evicted\"] == 1" <gc.json &&
	test_path_is_missing "$OVSNAP_ROOT/cache/layers/$layer" &&
	wait_for 30 trash_empty
'

test_done
