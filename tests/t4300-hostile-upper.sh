#!/bin/bash
test_description='hostile entries in a mount (symlinks out, devices, fifos, hardlinks, a directory swapped for a symlink while committing) are captured as what they are, never followed'
. "$(dirname "$0")/lib.sh"

# entry VOLUME PATH: the --json ls entry of PATH (one file) as JSON, to json_assert on
entry() {
	ovsnap --json ls -l "$1" "$2" >entry.json &&
	json "d[0] if isinstance(d, list) else d" <entry.json
}

# no_etc_inside DIR: no passwd or shadow anywhere below DIR (symlinks are not followed)
no_etc_inside() {
	find "$1" \( -name passwd -o -name shadow -o -name group \) >found &&
	test_must_be_empty found
}

# swap_loop DIR: forever swap DIR/d for a symlink to /etc and back, as fast as it goes
# (mv d d.real; ln -s /etc d; rm d; mv d.real d, without a fork per step)
swap_loop() {
	cd "$1" || return 1
	exec python3 -c '
import os
while True:
    for step in (lambda: os.rename("d", "d.real"), lambda: os.symlink("/etc", "d"),
                 lambda: os.unlink("d"), lambda: os.rename("d.real", "d")):
        try:
            step()
        except OSError:
            pass
'
}

test_lazy_prereq SHADOW 'grep -q "^root:" /etc/shadow'

test_expect_success 'setup: a volume, an attachment A' '
	ovsnap volume create v &&
	echo base >base &&
	ovsnap put v base >/dev/null &&
	mkdir A &&
	ovsnap mount v A >/dev/null &&
	grep "^root:" /etc/passwd >passwd.root
'

test_expect_success 'a symlink to /etc/shadow, a hardlink pair, a fifo and a char device are committed' '
	ln -s /etc/shadow A/x &&
	echo linked >A/h1 &&
	ln A/h1 A/h2 &&
	mkfifo A/fifo &&
	mknod A/dev c 1 3 &&
	h=$(head_of v) &&
	ovsnap commit A >id &&
	test "$(cat id)" != "$h" &&
	test "$(cat id)" = "$(head_of v)"
'

test_expect_success 'ls shows x as a symlink to /etc/shadow, the fifo and the device as such' '
	entry v x >x.json &&
	json_assert "d[\"type\"] == \"symlink\" and d[\"target\"] == \"/etc/shadow\" and \"object\" not in d" <x.json &&
	entry v fifo >fifo.json &&
	json_assert "d[\"type\"] == \"fifo\" and \"object\" not in d" <fifo.json &&
	entry v dev >dev.json &&
	json_assert "d[\"type\"] == \"char\" and \"object\" not in d" <dev.json &&
	ovsnap ls -l v >ls.out &&
	grep -E "^l.* x -> /etc/shadow\$" ls.out &&
	grep -E "^p.* fifo\$" ls.out &&
	grep -E "^c.* dev\$" ls.out &&
	grep -E "^-.* h1\$" ls.out
'

test_expect_success 'ls shows the device numbers of the char device' '
	ovsnap ls -l v dev >ls.out &&
	grep -E "^c.* 1, *3 .*dev\$" ls.out &&
	entry v dev >dev.json &&
	json_assert "(d.get(\"major\"), d.get(\"minor\")) == (1, 3) or str(d.get(\"rdev\")) in (\"1:3\", \"1,3\", \"259\")" <dev.json
'

test_expect_success SHADOW 'the volume never holds the content of /etc/shadow' '
	grep "^root:" /etc/shadow >shadow.root &&
	{ ovsnap get v x - >got 2>err; true; } &&
	! grep -F -f shadow.root got &&
	! grep -rqF -f shadow.root "$OVSNAP_ROOT/objects" "$OVSNAP_ROOT/packs" &&
	rm -rf out &&
	ovsnap get v . out &&
	test -L out/x &&
	test "$(readlink out/x)" = /etc/shadow
'

test_expect_success 'get gives back the fifo, the device with its numbers, the hardlink pair' '
	rm -rf out &&
	ovsnap get v . out &&
	test -p out/fifo &&
	test -c out/dev &&
	test "$(stat -c %t,%T out/dev)" = "$(stat -c %t,%T /dev/null)" &&
	test "$(stat -c %t,%T out/dev)" = 1,3 &&
	test -f out/h1 && test -f out/h2 &&
	test "$(stat -c %i out/h1)" = "$(stat -c %i out/h2)" &&
	test "$(stat -c %h out/h1)" = 2 &&
	echo linked >expect &&
	test_cmp expect out/h2
'

test_expect_success 'a fresh mount shows the same entries' '
	mkdir B &&
	ovsnap mount v B >/dev/null &&
	test -L B/x && test "$(readlink B/x)" = /etc/shadow &&
	test -p B/fifo &&
	test "$(stat -c %F:%t,%T B/dev)" = "character special file:1,3" &&
	test "$(stat -c %i B/h1)" = "$(stat -c %i B/h2)" &&
	ovsnap umount B
'

test_expect_success 'a directory replaced by a symlink to /etc is committed as that symlink' '
	mkdir A/d2 &&
	echo own >A/d2/own &&
	ovsnap commit A >/dev/null &&
	rm -rf A/d2 &&
	ln -s /etc A/d2 &&
	ovsnap commit A >/dev/null &&
	entry v d2 >d2.json &&
	json_assert "d[\"type\"] == \"symlink\" and d[\"target\"] == \"/etc\"" <d2.json &&
	rm -rf out &&
	ovsnap get v . out &&
	test -L out/d2 &&
	no_etc_inside out &&
	! grep -rqF -f passwd.root "$OVSNAP_ROOT/objects" "$OVSNAP_ROOT/packs"
'

test_expect_success 'a directory swapped for a symlink to /etc during 20 commits: never a file of /etc, never a crash' '
	mkdir A/d &&
	echo own >A/d/own &&
	echo mine >A/d/passwd.not &&
	for i in $(seq 1 50); do echo $i >A/d/f$i || return 1; done &&
	ovsnap commit A >/dev/null &&
	{ swap_loop A & swapper=$!; } &&
	test_bg_pid $swapper &&
	ok=0 failed=0 &&
	for i in $(seq 1 20)
	do
		echo "round $i" >A/round
		ovsnap commit A >out.$i 2>err.$i
		rc=$?
		if test $rc -ge 126
		then
			echo "commit $i: $(test_describe_exit_ $rc)" && cat err.$i && return 1
		fi
		if test $rc = 0
		then
			ok=$((ok + 1))
		else
			failed=$((failed + 1)) &&
			echo "commit $i: exit $rc: $(cat err.$i)"
		fi
		rm -rf got.tree &&
		ovsnap get v . got.tree &&
		no_etc_inside got.tree || return 1
	done &&
	kill $swapper && { wait $swapper; true; } &&
	echo "$ok commits went through, $failed failed" &&
	test $ok -gt 0 &&
	{ { test ! -L A/d && test -d A/d; } || { rm -f A/d && mv A/d.real A/d; }; } &&
	ovsnap commit A >/dev/null &&
	ovsnap fsck &&
	ovsnap --json volume history v >hist.json &&
	json "\"\\n\".join(s[\"id\"] for s in d)" <hist.json >ids &&
	while read -r id
	do
		rm -rf got.tree &&
		ovsnap get v . got.tree --at $id &&
		no_etc_inside got.tree || { echo "in snapshot $id"; return 1; }
		if test -L got.tree/d; then echo "$id: d -> $(readlink got.tree/d)"
		elif test -d got.tree/d; then echo "$id: d is a directory of $(ls got.tree/d | wc -l)"
		else echo "$id: no d"; fi
	done <ids &&
	! grep -rqF -f passwd.root "$OVSNAP_ROOT/objects" "$OVSNAP_ROOT/packs" &&
	echo own >expect &&
	ovsnap get v d/own - >got &&
	test_cmp expect got
'

test_expect_success 'clean up' '
	ovsnap umount A &&
	ovsnap gc >/dev/null &&
	ovsnap fsck &&
	! grep -F " $PWD/" /proc/self/mountinfo
'

test_done
