#!/usr/bin/env bash
# Runs the OpenCL-trait kernel tests (ILGPU's OpenCL backend) on PoCL 6 inside a Debian 13 (trixie) chroot.
# Debian 12's PoCL 3.1 lacks the generic address space ILGPU needs, so the host's own OpenCL is not enough.
# The chroot is built once (debootstrap, ~700 MB; ROOT=<dir> to move it) and reused; the repository, the
# .NET SDK and the NuGet cache are bind-mounted at their host paths, so the host build is tested as is.
# Needs root. Recipe adapted from the team's tools/opencl-chroot.sh so CI does not depend on ../shared.
#
#   .ci/opencl-tests.sh            # build on the host, then test Backend=OpenCL in the chroot
#   NO_BUILD=1 .ci/opencl-tests.sh # reuse an existing Release build
#
# Exit status 3: the chroot could not be built (no root, no debootstrap, no Debian mirror); nothing was tested.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROOT=${ROOT:-/var/cache/opencl-trixie}
[[ $(id -u) == 0 ]] || { echo "opencl-tests: needs root (debootstrap, chroot, bind mounts)" >&2; exit 3; }
command -v dotnet >/dev/null || { echo "opencl-tests: the .NET 10 SDK is required" >&2; exit 1; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if [[ -z ${NO_BUILD:-} ]]; then
  dotnet build tests/Sora.Tests.csproj -c Release -warnaserror
fi

if [[ ! -x $ROOT/usr/bin/clinfo ]]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; } || exit 3
  rm -rf "$ROOT"; mkdir -p "$ROOT"
  echo "opencl-tests: building a trixie chroot with PoCL 6 in $ROOT (once)" >&2
  timeout 600 debootstrap --variant=minbase \
    --include=pocl-opencl-icd,ocl-icd-libopencl1,ocl-icd-opencl-dev,clinfo,libicu76,libssl3t64,ca-certificates \
    trixie "$ROOT" >/tmp/opencl-tests-debootstrap.log 2>&1 \
    || { tail -20 /tmp/opencl-tests-debootstrap.log; rm -rf "$ROOT"; exit 3; }
fi

DOTNET_DIR=$(dirname "$(readlink -f "$(command -v dotnet)")")
NUGET_DIR=${NUGET_PACKAGES:-$HOME/.nuget/packages}
mounted=()
bind() {
  [[ -e $1 ]] || return 0
  if [[ -d $1 ]]; then mkdir -p "$2"; else mkdir -p "$(dirname "$2")"; touch "$2"; fi
  mount --bind "$1" "$2"; mounted+=("$2")
}
cleanup() { for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
bind /proc "$ROOT/proc"; bind /dev "$ROOT/dev"; bind /sys "$ROOT/sys"
bind "$DOTNET_DIR" "$ROOT$DOTNET_DIR"
bind "$REPO" "$ROOT$REPO"
# A git worktree's .git file points into the main checkout: mount that too when it exists.
if [[ -f $REPO/.git ]]; then
  gitdir=$(sed -n 's/^gitdir: //p' "$REPO/.git")
  common=$(readlink -f "$gitdir/../..")
  [[ -d $common ]] && bind "$common" "$ROOT$common"
fi
bind "$NUGET_DIR" "$ROOT$NUGET_DIR"
ln -sf "$DOTNET_DIR/dotnet" "$ROOT/usr/bin/dotnet"

chroot "$ROOT" /usr/bin/env -i HOME="$HOME" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 NUGET_PACKAGES="$NUGET_DIR" CI="${CI:-}" \
  bash -c "set -e; clinfo -l; cd '$REPO' && dotnet test tests/Sora.Tests.csproj -c Release --no-build --filter 'Backend=OpenCL' $*"
