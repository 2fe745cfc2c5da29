#!/bin/bash
# make install honours PREFIX and DESTDIR, and installs the CLI, the hook, the static control
# client, the hooks.d entry pointing at the installed hook, the containerd snapshotter daemon
# with its systemd unit, and the S3 module that the binaries load only for an s3:// store.

test_description='make install'
. "$(dirname "$0")/lib.sh"

repo=$(cd "$TEST_DIRECTORY/.." && pwd)

test_expect_success 'make install PREFIX=/opt/ov DESTDIR=stage' '
	make -s -C "$repo" install PREFIX=/opt/ov DESTDIR="$PWD/stage" &&
	test -x stage/opt/ov/bin/ovsnap &&
	test -x stage/opt/ov/bin/ovsnap-hook &&
	test -x stage/opt/ov/bin/ovsnap-ctl &&
	test -x stage/opt/ov/bin/ovsnap-snapshotter &&
	test -f stage/opt/ov/lib/ovsnap/ovsnap-s3.so &&
	grep "^ExecStart=/opt/ov/bin/ovsnap-snapshotter " stage/opt/ov/lib/systemd/system/ovsnap-snapshotter.service &&
	grep "\"path\": \"/opt/ov/bin/ovsnap-hook\"" stage/opt/ov/share/containers/oci/hooks.d/ovsnap.json &&
	python3 -m json.tool stage/opt/ov/share/containers/oci/hooks.d/ovsnap.json >/dev/null
'

test_expect_success 'the installed CLI runs' '
	stage/opt/ov/bin/ovsnap --version >version &&
	grep "^ovsnap " version
'

# libcurl and its forty libraries cost every command ~10 ms of CPU: only the module links them
test_expect_success 'the binaries do not link libcurl; the S3 module does' '
	for b in ovsnap ovsnap-hook ovsnap-snapshotter; do
		! ldd stage/opt/ov/bin/$b | grep -E "libcurl|libxml2|libcrypto" || return 1
	done &&
	ldd stage/opt/ov/lib/ovsnap/ovsnap-s3.so | grep libcurl
'

# the module takes the engine's functions from the binary that loads it: each binary must export them
test_expect_success 'every installed binary exports what the S3 module needs of the engine' '
	nm -D --undefined-only stage/opt/ov/lib/ovsnap/ovsnap-s3.so | awk "{ print \$2 }" |
		grep -v "@" | sort -u >needs &&
	grep -E "^(ov_|xmalloc)" needs &&
	for b in ovsnap ovsnap-hook ovsnap-snapshotter; do
		nm -D --defined-only stage/opt/ov/bin/$b | awk "{ print \$3 }" | sort -u >has &&
		comm -23 needs has | grep -v -E "^(_|curl_|xml|EVP_|MD5|OPENSSL_|CRYPTO_)" >missing
		test_must_be_empty missing || return 1
	done
'

# no endpoint: loading the module is what is checked, so the store fails on its first request
s3_list_() {
	AWS_ENDPOINT_URL=http://127.0.0.1:9 AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s OVSNAP_S3_TIMEOUT=1 \
		stage/opt/ov/bin/ovsnap --root node --store s3://bucket volume list
}

test_expect_success 'the installed CLI loads the S3 module from PREFIX/lib/ovsnap' '
	test_must_fail s3_list_ 2>err &&
	cat err &&
	grep "127.0.0.1:9" err &&
	! grep -i module err
'

test_expect_success 'an S3 module others can write is refused; a missing one is named' '
	chmod g+w stage/opt/ov/lib/ovsnap/ovsnap-s3.so &&
	test_must_fail s3_list_ 2>err &&
	grep "S3 module .*/opt/ov/bin/../lib/ovsnap/ovsnap-s3.so: not a regular file owned by root" err &&
	rm stage/opt/ov/lib/ovsnap/ovsnap-s3.so &&
	test_must_fail s3_list_ 2>err &&
	grep "s3:// stores need the S3 module .*ovsnap-s3.so: No such file" err
'

test_done
