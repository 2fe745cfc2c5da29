#!/bin/bash
# A forced hash collision never serves one volume's file with another's content: a test build
# keeps only 8 bits of every content hash (make collide), so collisions happen every few objects.

test_description='hash collisions are detected by comparing bytes'
. "$(dirname "$0")/lib.sh"

collide=$(cd "$(dirname "$0")/.." && pwd)/build-collide/ovsnap
c() { "$collide" "$@"; }

test_expect_success 'the collision build exists' '
	test -x "$collide"
'

test_expect_success 'two volumes of 300 distinct files each, put with 8-bit hashes' '
	mkdir a b &&
	for i in $(seq 1 300); do
		echo "volume a file $i" >a/f$i &&
		echo "volume b file $i" >b/f$i || return 1
	done &&
	c volume create va &&
	c volume create vb &&
	c put va a &&
	c put vb b
'

# object ids of the files in a directory of a volume, one per line
object_ids() { # VOLUME DIR
	c --json ls "$1" "$2" | python3 -c "import json, sys; [print(e[\"object\"]) for e in json.load(sys.stdin) if e.get(\"object\")]"
}

test_expect_success 'collisions did happen: objects under variant ids exist' '
	object_ids va a >ids &&
	object_ids vb b >>ids &&
	test "$(wc -l <ids)" = 600 &&
	grep "\." ids >variants &&
	test -s variants
'

test_expect_success 'every file comes back with its own bytes, in both volumes' '
	c get va a a-out &&
	c get vb b b-out &&
	diff -r a a-out &&
	diff -r b b-out
'

test_expect_success 'a re-put of identical content dedups onto the right variant' '
	c --json fsck >before.json &&
	c put va a again &&
	c --json fsck >after.json &&
	json "d[\"objects\"]" <before.json >n.before &&
	json "d[\"objects\"]" <after.json >n.after &&
	test_cmp n.before n.after &&
	c get va again again-out &&
	diff -r a again-out
'

test_expect_success 'fsck is clean with colliding ids' '
	c fsck
'

# Two writers store different contents under the same id in their own packs: the second to publish
# finds the first pack and gives up with nothing published (and says to try again); whatever was
# published reads back right.
test_expect_success 'concurrent puts of colliding contents: each put lands whole or fails cleanly' '
	for w in 1 2 3 4; do
		mkdir w$w && c volume create vw$w || return 1
		for i in $(seq 1 200); do echo "writer $w file $i" >w$w/f$i || return 1; done
	done &&
	for w in 1 2 3 4; do
		(c put vw$w w$w >/dev/null 2>err$w; echo $? >rc$w) &
	done &&
	wait &&
	ok=0 &&
	for w in 1 2 3 4; do
		if test "$(cat rc$w)" = 0; then
			ok=$((ok + 1)) &&
			c get vw$w w$w w$w-out &&
			diff -r w$w w$w-out || return 1
		else
			cat err$w &&
			grep -e "try again" err$w &&
			test_must_fail c ls vw$w w$w || return 1
		fi
	done &&
	echo "$ok of 4 puts landed" &&
	test $ok -ge 1 &&
	c fsck
'

test_done
