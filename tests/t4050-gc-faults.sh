#!/bin/bash
# gc killed at each of its steps (OVSNAP_FAULT): every volume's snapshots stay intact, fsck is
# clean but for garbage, and the next gc finishes the job.

test_description='gc survives being killed at every step'
. "$(dirname "$0")/lib.sh"

setup_garbage() { # N: a volume to keep, one to delete, objects only the deleted one had
	ovsnap volume create "keep$1" &&
	mkdir -p "k$1" "g$1" &&
	echo "kept $1" >"k$1/a" && echo "shared" >"k$1/s" &&
	echo "garbage $1" >"g$1/b" && echo "shared" >"g$1/s" &&
	ovsnap put "keep$1" "k$1" >/dev/null &&
	echo "kept $1 v2" >"k$1/a" &&
	ovsnap put "keep$1" "k$1" >/dev/null &&
	ovsnap volume create "gone$1" &&
	ovsnap put "gone$1" "g$1" >/dev/null &&
	ovsnap volume delete "gone$1" >/dev/null
}

check_keep() { # N: both snapshots of keepN read back as they were put
	echo "kept $1 v2" >expect &&
	ovsnap get "keep$1" "k$1/a" - >actual && test_cmp expect actual &&
	echo "kept $1" >expect &&
	ovsnap get "keep$1" "k$1/a" - --at head~1 >actual && test_cmp expect actual &&
	echo shared >expect &&
	ovsnap get "keep$1" "k$1/s" - >actual && test_cmp expect actual
}

n=0
for point in gc-mid-sweep gc-after-snapshots gc-after-trees gc-after-objects; do
	n=$((n + 1))
	test_expect_success "gc killed at $point: nothing referenced is lost, the next gc finishes" '
		setup_garbage '$n' &&
		OVSNAP_FAULT='$point' killed ovsnap gc &&
		ovsnap fsck &&
		check_keep '$n' &&
		ovsnap gc &&
		ovsnap --json fsck >fsck.json &&
		json_assert "d[\"garbage_objects\"] == 0 and d[\"problems\"] == []" <fsck.json &&
		check_keep '$n'
	'
done

test_done
