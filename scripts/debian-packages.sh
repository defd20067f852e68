#!/bin/sh
# The Debian packages sandbox and its tests use: the one list, called by the README's first
# command and by .ci/run (no other list to drift from it). Run as root on Debian 12 or later.
#
#   scripts/debian-packages.sh                 apt-get update, then install what building and running sandbox needs
#   scripts/debian-packages.sh --test          the same, and what the tests use as well
#   scripts/debian-packages.sh --list [--test] print the package names, one a line, and install nothing
#
# The host programs sandbox runs (ip, nft, newuidmap, pasta, ...) are in src/model/tables.ts
# (HOST_PROGRAMS) with their package; test/unit/host-programs.test.ts checks that each of those
# packages is in the `run` part here.
set -eu

# part     package          what for (one single-quoted string: no apostrophe in it)
PACKAGES='
run   busybox-static   the busybox root of the samples (samples/rootfs/busybox) and the busybox OCI image
run   make             builds libsbx (native/)
run   gcc              builds libsbx
run   libc6-dev        builds libsbx
run   libseccomp-dev   libsbx compiles seccomp filters with libseccomp
run   iproute2         ip: the veth pair of network: private (as root)
run   nftables         nft: outbound NAT and published ports of network: private (as root)
run   uidmap           newuidmap and newgidmap: rootless user namespaces of more than one id
run   passt            pasta: the rootless private network
run   slirp4netns      the rootless private network where pasta cannot start
test  python3          the echo servers of the network tests, the servers and client of the egress tests, and reading xattrs
test  docker-registry  the local registry of the image tests
test  zstd             zstd layers in the image tests
test  crun             a peer of the benchmarks, and the OCI bundle of sandbox export
test  runc             a peer of the benchmarks, and the OCI bundle of sandbox export
test  bubblewrap       a peer of the benchmarks
test  iperf3           the network benchmarks
test  socat            a peer of the network benchmarks
test  conmon           a peer of the supervisor benchmark
test  skopeo           a peer of the image benchmark
test  umoci            a peer of the image benchmark
test  containerd       containerd and ctr, which drive sandbox-runtime as their runtime in the OCI runtime tests
test  podman           a peer of the benchmarks, and the Pod of sandbox export under podman kube play
test  tini             tini-static as the init of a command, PID 1 of each run, in the restart tests
test  wabt             wat2wasm: the unit test that checks the committed SHA-256 module (src/util/sha256-wasm.ts) against its text
test  catatonit        the pause process of the Pod under podman kube play (podman only recommends it, and takes tini in its place where tini is installed)
test  e2fsprogs        the ext4 file systems the rootless tests make for stores in the VM
test  openssl          a self-signed certificate for the registry of the image tests that speaks only HTTPS, and for the HTTPS server of the egress tests
test  curl             the HTTP and HTTPS client inside sandboxes of the egress tests and bench
test  debootstrap      the images of the seeds test (a Jenkins-shaped one, a bookworm ubuntu), built once from the Debian mirror
test  openjdk-17-jdk-headless  javac and jar for the small Java server of the Jenkins-shaped test image
test  zsh              the check of the zsh completion script (sandbox completion zsh)
test  fish             the check of the fish completion script (sandbox completion fish)
'

list=false
parts=run
for arg in "$@"; do
  case "$arg" in
    --list) list=true ;;
    --test) parts='run|test' ;;
    *) echo "usage: $0 [--list] [--test]" >&2; exit 1 ;;
  esac
done

names=$(printf '%s\n' "$PACKAGES" | awk -v parts="^($parts)\$" '$1 ~ parts { print $2 }')
if $list; then printf '%s\n' "$names"; exit 0; fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word a package
apt-get install -y -qq $names >/dev/null
