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

test_expect_success 'collisions did happen: objects under variant ids exist' '
	find "$OVSNAP_ROOT/objects" -type f -name "*.[0-9]*" >variants &&
	test -s variants
'

test_expect_success 'every file comes back with its own bytes, in both volumes' '
	c get va a a-out &&
	c get vb b b-out &&
	diff -r a a-out &&
	diff -r b b-out
'

test_expect_success 'a re-put of identical content dedups onto the right variant' '
	du_before=$(du -sb "$OVSNAP_ROOT/objects" | cut -f1) &&
	c put va a again &&
	du_after=$(du -sb "$OVSNAP_ROOT/objects" | cut -f1) &&
	test "$du_before" = "$du_after" &&
	c get va again again-out &&
	diff -r a again-out
'

test_expect_success 'fsck is clean with colliding ids' '
	c fsck
'

test_done
