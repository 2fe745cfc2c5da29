#!/bin/bash
test_description='put and get: trees come back exactly (names, types, modes, owners, times, xattrs, links)'
. "$(dirname "$0")/lib.sh"

# make_tree DIR: a tree with every kind of thing a container's files hold
make_tree() {
	local d=$1 long
	mkdir -p "$d" &&
	(
		cd "$d" &&
		mkdir -p sub/deeper empty deep/a/b/c sticky setgid-dir private ro-dir &&
		echo "hello world" >hello.txt &&
		: >empty-file &&
		printf x >one-byte &&
		head -c 4096 /dev/urandom >page &&
		head -c 65537 /dev/urandom >sub/odd-size &&
		head -c 300000 /dev/urandom >sub/deeper/random.bin &&
		printf "same content\n" >dup1 && printf "same content\n" >dup2 &&
		echo "name with space" >"with space" &&
		echo "newline" >"$(printf "new\nline")" &&
		echo "tab" >"$(printf "tab\there")" &&
		echo "utf8" >"ünïcödé-名前-🙂" &&
		echo "dash" >./-leading-dash &&
		echo "glob" >"star*?[x]" &&
		echo "backslash" >"back\\slash" &&
		echo "quotes" >"it's \"quoted\"" &&
		long=$(printf "%0255d" 0 | tr 0 L) &&
		echo "long name" >"$long" &&
		mkdir "long-$(printf "%0250d" 0 | tr 0 d)" &&
		ln -s hello.txt link-rel &&
		ln -s /etc/passwd link-abs &&
		ln -s does/not/exist link-dangling &&
		ln -s sub link-dir &&
		ln -s "$(printf "%01000d" 0 | tr 0 t)" link-long-target &&
		ln -s "$(printf "odd\ntarget with space")" link-odd-target &&
		echo "linked" >hl-a &&
		ln hl-a sub/hl-b &&
		ln hl-a deep/a/hl-c &&
		echo "pair" >pair-1 &&
		ln pair-1 pair-2 &&
		mkfifo fifo &&
		chmod 0620 fifo &&
		echo "setuid" >setuid-file &&
		echo "setgid" >setgid-file &&
		echo "secret" >private/key &&
		echo "readonly" >ro-dir/file &&
		echo "nobody may read" >mode-0000 &&
		echo "x" >exec-file &&
		echo "odd owner" >big-ids &&
		setfattr -n user.color -v blue hello.txt &&
		setfattr -n user.empty hello.txt &&
		setfattr -n user.binary -v 0x00ff10fe0a sub/odd-size &&
		setfattr -n user.big -v "$(head -c 2000 /dev/zero | tr "\0" a)" page &&
		setfattr -n user.on-dir -v dir-value sub &&
		setfattr -n user.on-link-target -v via-hardlink hl-a &&
		chown 1234:5678 setuid-file &&
		chmod 4755 setuid-file &&
		chown 1234:5678 setgid-file &&
		chmod 2711 setgid-file &&
		chmod 1777 sticky &&
		chown 1000:1000 setgid-dir &&
		chmod 2775 setgid-dir &&
		chown 65534:65534 private &&
		chmod 0700 private &&
		chmod 0400 private/key &&
		chown 2000000000:3000000000 big-ids &&
		chmod 0000 mode-0000 &&
		chmod 0751 exec-file &&
		chown -h 4321:8765 link-rel &&
		chmod 0555 ro-dir &&
		touch -d "2001-02-03 04:05:06.123456789" hello.txt &&
		touch -d "2010-10-10 10:10:10.000000001" sub/odd-size &&
		touch -d "2020-02-29 23:59:59.999999999" empty-file &&
		touch -h -d "2005-05-05 05:05:05.5" link-rel &&
		touch -d "1999-12-31 23:59:59.25" sub/deeper &&
		touch -d "2002-02-02 02:02:02.02" empty
	)
}

test_expect_success XATTR 'setup: a volume and a rich tree' '
	ovsnap volume create vol &&
	make_tree src &&
	tree_manifest src >src.manifest &&
	test_line_count -ge 40 src.manifest
'

test_expect_success XATTR 'put of a tree prints the new snapshot id' '
	ovsnap put vol src >id &&
	test_line_count = 1 id &&
	is_snapshot_id "$(cat id)" &&
	test "$(cat id)" = "$(head_of vol)"
'

test_expect_success XATTR 'get of the tree gives back the same names, types, modes, owners, file times, sizes, contents, xattrs and hard links' '
	ovsnap get vol src out &&
	tree_manifest --file-mtimes-only src >expect &&
	tree_manifest --file-mtimes-only out >actual &&
	test_cmp expect actual
'

test_expect_success XATTR 'directory and symlink mtimes come back too' '
	tree_manifest src >expect &&
	tree_manifest out >actual &&
	test_cmp expect actual
'

test_expect_success XATTR 'file contents are byte-identical (cmp)' '
	(cd src && find . -type f -print0) >files &&
	while IFS= read -r -d "" f
	do
		cmp -s "src/$f" "out/$f" || { echo "differs: $f"; return 1; }
	done <files
'

test_expect_success XATTR 'files that were not hard links do not come back as hard links' '
	test "$(stat -c %i out/dup1)" != "$(stat -c %i out/dup2)" &&
	test "$(stat -c %h out/dup1)" = 1 &&
	test "$(stat -c %h out/hello.txt)" = 1
'

test_expect_success XATTR 'get of a file to a new LOCAL name writes exactly that file' '
	mkdir fresh &&
	ovsnap get vol src/hello.txt fresh/copy.txt &&
	test_cmp src/hello.txt fresh/copy.txt &&
	ls -A fresh >actual &&
	echo copy.txt >expect &&
	test_cmp expect actual
'

test_expect_success XATTR 'a file you got is yours: changing it changes neither the store nor its twin' '
	echo "local edit" >>out/dup1 &&
	chmod 0600 out/hello.txt &&
	ovsnap get vol src/dup1 again-dup1 &&
	ovsnap get vol src/hello.txt again-hello &&
	test_cmp src/dup1 again-dup1 &&
	test_cmp src/dup2 out/dup2 &&
	test "$(stat -c %a again-hello)" = "$(stat -c %a src/hello.txt)" &&
	ovsnap fsck
'

test_expect_success XATTR 'the tree in the volume is listed with the right types' '
	ovsnap --json ls vol src >ls.json &&
	json_assert "{e[\"name\"]: e[\"type\"] for e in d}[\"hello.txt\"] == \"file\"" <ls.json &&
	json_assert "{e[\"name\"]: e[\"type\"] for e in d}[\"sub\"] == \"dir\"" <ls.json &&
	json_assert "{e[\"name\"]: e[\"type\"] for e in d}[\"link-rel\"] == \"symlink\"" <ls.json &&
	json_assert "{e[\"name\"]: e[\"type\"] for e in d}[\"fifo\"] == \"fifo\"" <ls.json &&
	json_assert "\"new\\nline\" in [e[\"name\"] for e in d]" <ls.json &&
	json_assert "\"ünïcödé-名前-🙂\" in [e[\"name\"] for e in d]" <ls.json
'

test_expect_success ROOT 'trusted.* xattrs and file capabilities survive' '
	mkdir caps &&
	echo ping >caps/ping &&
	setfattr -n trusted.note -v "for root only" caps/ping &&
	ln -s ping caps/link &&
	setfattr -h -n trusted.on-symlink -v yes caps/link &&
	setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= caps/ping &&
	getfattr -n security.capability caps/ping &&
	ovsnap put vol caps &&
	ovsnap get vol caps caps-out &&
	tree_manifest caps >expect &&
	tree_manifest caps-out >actual &&
	test_cmp expect actual
'

test_expect_success ROOT 'character and block devices survive' '
	mkdir devs &&
	mknod devs/null c 1 3 &&
	mknod devs/loop b 7 200 &&
	chmod 0640 devs/loop &&
	chown 12:34 devs/null &&
	ovsnap put vol devs &&
	ovsnap get vol devs devs-out &&
	tree_manifest devs >expect &&
	tree_manifest devs-out >actual &&
	test_cmp expect actual &&
	ovsnap --json ls vol devs >ls.json &&
	json_assert "sorted((e[\"name\"], e[\"type\"]) for e in d) == [(\"loop\", \"block\"), (\"null\", \"char\")]" <ls.json
'

test_expect_success 'mtimes before 1970 and after 2038 survive' '
	mkdir times &&
	echo old >times/old && touch -d "1969-07-20 20:17:40.5" times/old &&
	echo epoch >times/epoch && touch -d "1970-01-01 00:00:00" times/epoch &&
	echo future >times/future && touch -d "2100-01-01 00:00:00.000000007" times/future &&
	ovsnap put vol times &&
	ovsnap get vol times times-out &&
	tree_manifest --file-mtimes-only times >expect &&
	tree_manifest --file-mtimes-only times-out >actual &&
	test_cmp expect actual
'

test_expect_success 'a name that is not valid UTF-8 survives, and --json stays valid JSON' '
	mkdir bytes &&
	echo latin1 >"bytes/$(printf "caf\351")" &&
	ovsnap put vol bytes &&
	ovsnap get vol bytes bytes-out &&
	tree_manifest bytes >expect &&
	tree_manifest bytes-out >actual &&
	test_cmp expect actual &&
	ovsnap --json ls vol bytes >ls.json &&
	json_valid ls.json
'

test_expect_success 'a sparse file comes back with the same bytes' '
	mkdir sparse &&
	truncate -s 3M sparse/holes &&
	printf middle | dd of=sparse/holes bs=1 seek=1500000 conv=notrunc 2>/dev/null &&
	ovsnap put vol sparse &&
	ovsnap get vol sparse sparse-out &&
	cmp sparse/holes sparse-out/holes
'

test_expect_success 'put of one file with no REMOTE lands at the root under its base name' '
	mkdir -p local/dir &&
	echo "single" >local/dir/single.txt &&
	ovsnap put vol local/dir/single.txt &&
	ovsnap get vol single.txt - >got &&
	test_cmp local/dir/single.txt got
'

test_expect_success 'put to a new REMOTE name stores the file under that name' '
	ovsnap put vol local/dir/single.txt renamed.txt &&
	ovsnap get vol renamed.txt - >got &&
	test_cmp local/dir/single.txt got
'

test_expect_success 'put to a REMOTE ending in / or naming a directory puts the file inside it' '
	ovsnap put vol local/dir/single.txt src/ &&
	ovsnap get vol src/single.txt - >got &&
	test_cmp local/dir/single.txt got &&
	echo hi >hello-local &&
	ovsnap put vol hello-local src &&
	ovsnap get vol src/hello-local - >got &&
	test_cmp hello-local got
'

test_expect_success 'put to a nested REMOTE creates the missing directories' '
	ovsnap put vol local/dir/single.txt new/nested/path/file.txt &&
	ovsnap get vol new/nested/path/file.txt - >got &&
	test_cmp local/dir/single.txt got &&
	ovsnap --json ls vol new/nested >ls.json &&
	json_assert "[(e[\"name\"], e[\"type\"]) for e in d] == [(\"path\", \"dir\")]" <ls.json
'

test_expect_success 'put of a directory merges: same names replaced, others kept' '
	mkdir -p merge1/m/keep merge2/m &&
	echo v1 >merge1/m/file && echo kept >merge1/m/keep/k && echo only1 >merge1/m/only1 &&
	m1=$(ovsnap put vol merge1/m) &&
	echo v2 >merge2/m/file && echo only2 >merge2/m/only2 &&
	ovsnap put vol merge2/m &&
	test_expect_code 3 ovsnap ls vol m/m &&
	ovsnap get vol m merged &&
	echo v2 >expect && test_cmp expect merged/file &&
	echo kept >expect && test_cmp expect merged/keep/k &&
	echo only1 >expect && test_cmp expect merged/only1 &&
	echo only2 >expect && test_cmp expect merged/only2
'

test_expect_success 'put replaces a file; the old version stays in the history' '
	echo "version 1" >v && old=$(ovsnap put vol v versioned) &&
	echo "version 2" >v && new=$(ovsnap put vol v versioned) &&
	test "$old" != "$new" &&
	ovsnap get vol versioned - >got && echo "version 2" >expect && test_cmp expect got &&
	ovsnap get vol versioned - --at "$old" >got && echo "version 1" >expect && test_cmp expect got &&
	ovsnap get vol versioned - --at head~1 >got && test_cmp expect got &&
	ovsnap get vol versioned - --at "${old:0:8}" >got && test_cmp expect got &&
	ovsnap get vol versioned - --at head >got && echo "version 2" >expect && test_cmp expect got
'

test_expect_success 'get --at an older snapshot gives the tree as it was' '
	ovsnap get vol m m-old --at "$m1" &&
	echo v1 >expect &&
	test_cmp expect m-old/file &&
	test_path_is_file m-old/only1 &&
	test_path_is_missing m-old/only2
'

test_expect_success 'put from stdin and get to stdout round-trip binary data' '
	head -c 1000000 /dev/urandom >blob &&
	ovsnap put vol - stdin/blob <blob &&
	ovsnap get vol stdin/blob - >got &&
	test_cmp_bin blob got &&
	printf "" | ovsnap put vol - stdin/empty &&
	ovsnap get vol stdin/empty - >got &&
	test_must_be_empty got
'

test_expect_success 'put from stdin needs a REMOTE name' '
	n=$(history_length vol) &&
	echo data | test_expect_code 2 ovsnap put vol - &&
	test "$(history_length vol)" = "$n"
'

test_expect_success 'get with no LOCAL writes the base name into the current directory' '
	mkdir here &&
	(cd here && ovsnap get vol src/hello.txt) &&
	test_cmp src/hello.txt here/hello.txt
'

test_expect_success 'get refuses to overwrite a local file, and --force overwrites it' '
	echo "precious" >precious &&
	test_must_fail ovsnap get vol src/hello.txt precious 2>err &&
	grep -F precious err &&
	echo "precious" >expect && test_cmp expect precious &&
	ovsnap get vol src/hello.txt precious --force &&
	test_cmp src/hello.txt precious
'

test_expect_success 'get of a tree refuses to overwrite local files without --force' '
	mkdir -p clash/src &&
	echo mine >clash/hello.txt &&
	echo mine >clash/src/hello.txt &&
	test_must_fail ovsnap get vol src clash 2>err &&
	grep -e hello.txt -e clash -e src err &&
	echo mine >expect &&
	test_cmp expect clash/hello.txt &&
	test_cmp expect clash/src/hello.txt
'

test_expect_success 'get of a missing path or snapshot is "not found" and writes nothing' '
	test_expect_code 3 ovsnap get vol no/such/file out-missing &&
	test_path_is_missing out-missing &&
	test_expect_code 3 ovsnap get vol src/hello.txt out-missing --at 0000ffff &&
	test_path_is_missing out-missing &&
	test_expect_code 3 ovsnap get vol src/hello.txt out-missing --at head~1000 &&
	test_path_is_missing out-missing
'

test_expect_success 'put of a missing local file fails and makes no snapshot' '
	n=$(history_length vol) &&
	test_must_fail ovsnap put vol does-not-exist 2>err &&
	grep -F does-not-exist err &&
	test "$(history_length vol)" = "$n"
'

test_expect_success 'get of the whole volume (.) gives every top-level entry' '
	ovsnap get vol . whole &&
	ovsnap --json ls vol >ls.json &&
	json "\"\\n\".join(sorted(e[\"name\"] for e in d))" <ls.json >expect &&
	ls -A whole | sort >actual &&
	test_cmp expect actual
'

test_done
