#!/usr/bin/env bash
# Packs the solution to a local feed, makes a fresh console app from the program that opens
# src/DefaultModel/README.md (the model package's README), adds both packages from the feed, runs it and checks
# the clip it writes. A unique prerelease version keeps a package cached by an earlier run from standing in.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d /tmp/sora-package-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
version="0.1.0-ci.$(date +%s)"

dotnet pack Kernels.sln -c Release ${NO_BUILD:+--no-build} -p:Version="$version" -o "$work/feed" -v quiet
mkdir "$work/app" && cd "$work/app"
dotnet new console --name ClipApp --output . >/dev/null
cat > nuget.config <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="local" value="$work/feed" />
  </packageSources>
</configuration>
CONFIG
dotnet add package Sora.Native --version "$version" >/dev/null
dotnet add package Sora.Native.DefaultModel --version "$version" >/dev/null
# The first C# block of the README, as it is.
awk '/^```csharp$/ { inside = 1; next } /^```$/ && inside { exit } inside { print }' "$repo/src/DefaultModel/README.md" > Program.cs
[[ -s Program.cs ]] || { echo "package-smoke: no csharp block in src/DefaultModel/README.md" >&2; exit 1; }
dotnet run -c Release
[[ $(head -c 6 clip.gif) == GIF89a ]] || { echo "package-smoke: clip.gif is missing or not a GIF" >&2; exit 1; }
echo "package-smoke: a fresh console app made clip.gif ($(stat -c %s clip.gif) bytes) with the packages $version"
