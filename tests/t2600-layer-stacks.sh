#!/bin/bash
# Delta layers (EROFS images) stack up as an attachment reloads onto newer snapshots; past 8 the
# newest layer is replaced by a full image in the background and used from then on. The mount shows the right tree at every step, and gc
# never takes a layer a live mount stands on.

test_description='deep delta stacks get flattened off the reload path'
. "$(dirname "$0")/lib.sh"

lowers_of() { # DIR: the lowers of the overlay mounted there (detached image mounts), one a line
	findmnt -rn -o OPTIONS --mountpoint "$1" | tr , '\n' | sed -n 's/^lowerdir+*=//p'
}

layers_of() { # the layer trees the only attachment stands on (its state), one a line
	python3 -c 'import json, sys; [print(l) for l in json.load(open(sys.argv[1]))["layers"]]' \
		"$OVSNAP_ROOT"/attach/*/state
}

test_expect_success 'setup: a volume of 30 files, mounted' '
	mkdir src &&
	for i in $(seq 1 30); do echo "v0 $i" >src/f$i || return 1; done &&
	ovsnap volume create v &&
	ovsnap put v src/ >/dev/null &&
	mkdir A &&
	ovsnap mount v A
'

test_expect_success '12 reloads, one changed file each: every step shows the whole right tree' '
	for r in $(seq 1 12); do
		echo "v$r" >src/f$r &&
		ovsnap put v src/f$r f$r >/dev/null &&
		ovsnap reload A >/dev/null &&
		ovsnap get v . want-$r >/dev/null &&
		diff -r want-$r A || return 1
	done
'

# the first layer is full; a second full one is the flattened top of the stack
flat_built() { test "$(grep -l "^base -" "$OVSNAP_ROOT"/cache/layers/*/info | wc -l)" -ge 2; }

test_expect_success 'the stack grew past 8 layers, then a flat copy took over' '
	for i in $(seq 1 100); do flat_built && break; sleep 0.1; done &&
	flat_built &&
	echo "v13" >src/f13 &&
	ovsnap put v src/f13 f13 >/dev/null &&
	ovsnap reload A >/dev/null &&
	ovsnap get v . want-13 >/dev/null &&
	diff -r want-13 A &&
	lowers_of A >lowers &&
	cat lowers &&
	test "$(wc -l <lowers)" -le 8
'

test_expect_success 'gc keeps every layer a live mount uses; the mount still reads right' '
	ovsnap gc >/dev/null &&
	ovsnap get v . want-gc >/dev/null &&
	diff -r want-gc A &&
	layers_of >layers &&
	test -s layers &&
	while read -r t; do test -f "$OVSNAP_ROOT/cache/layers/$t/image" || return 1; done <layers
'

test_expect_success 'after umount, gc evicts the layers and a new mount rebuilds what it needs' '
	ovsnap umount A &&
	ovsnap gc >/dev/null &&
	test -z "$(ls "$OVSNAP_ROOT/cache/layers")" &&
	ovsnap mount v A >/dev/null &&
	diff -r want-13 A &&
	ovsnap umount A
'

test_expect_success 'a layer is published first and marked synced by a background syncfs' '
	layer=$(ls -d "$OVSNAP_ROOT"/cache/layers/* | head -n 1) &&
	for i in $(seq 1 100); do test -e "$layer/synced" && break; sleep 0.1; done &&
	test -e "$layer/synced"
'

test_expect_success 'a layer from an earlier boot that never got synced is rebuilt, not trusted' '
	ovsnap gc >/dev/null &&
	ovsnap mount v A >/dev/null &&
	ovsnap umount A &&
	layer=$(ls -d "$OVSNAP_ROOT"/cache/layers/*) &&
	test "$(echo "$layer" | wc -l)" = 1 &&
	for i in $(seq 1 100); do test -e "$layer/synced" && break; sleep 0.1; done &&
	rm "$layer/synced" &&
	sed -i "s/^boot .*/boot 00000000-0000-0000-0000-000000000000/" "$layer/info" &&
	mkdir planted && echo planted >planted/planted-by-a-crash &&
	from_dir=$(dirname "$OVSNAP")/erofs-from-dir &&
	{ [ -x "$from_dir" ] || from_dir=$TEST_DIRECTORY/helpers/erofs-from-dir; } &&
	"$from_dir" planted "$layer/image" &&
	ovsnap mount v A >/dev/null &&
	test_path_is_missing A/planted-by-a-crash &&
	fsck.erofs "$layer/image" &&
	diff -r want-13 A &&
	ovsnap umount A
'

test_expect_success 'gc keeps every layer while an attachment state cannot be read, and says which' '
	ovsnap mount v A >/dev/null &&
	id=$(ls "$OVSNAP_ROOT/attach") &&
	cp "$OVSNAP_ROOT/attach/$id/state" state.good &&
	echo "{ not json" >"$OVSNAP_ROOT/attach/$id/state" &&
	ls "$OVSNAP_ROOT/cache/layers" >layers.before &&
	ovsnap gc >out 2>err &&
	test_stderr_mentions err "attachment state unreadable" "$id" "no cache layer evicted" &&
	ls "$OVSNAP_ROOT/cache/layers" >layers.after &&
	test_cmp layers.before layers.after &&
	diff -r want-13 A &&
	cp state.good "$OVSNAP_ROOT/attach/$id/state" &&
	ovsnap umount A
'

test_done
