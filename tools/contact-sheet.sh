#!/usr/bin/env bash
# Makes docs/contact-sheet.png: eight prompts on the shipped model (seed 7), each clip a row of every other frame,
# scaled 2x (nearest) on a gray grid. Needs ffmpeg. Run from the repository root after retraining weights/. The
# prompts are v2's (stars, twelve colours, two objects); docs/contact-sheet.png is still v1's, made with six v1 prompts.
set -euo pipefail
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
prompts=("a yellow square moving up on a black background" "a red circle moving right on a blue background"
         "a green triangle moving left on a white background" "a large orange star rotating on a purple background"
         "a pink circle moving down and right on a gray background" "a cyan square growing on a brown background"
         "a white star bouncing on a blue background" "a red circle and a yellow square moving apart on a black background")
dotnet build src/Sora.Cli -c Release -v quiet >/dev/null
inputs=()
for i in "${!prompts[@]}"; do
  dotnet run --project src/Sora.Cli -c Release --no-build -- generate "${prompts[i]}" --seed 7 --out "$work/c$i/" 2>/dev/null
  frames=$(( ($(ls "$work/c$i" | wc -l) + 1) / 2 ))
  size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 "$work/c$i/frame_00000.png")
  w=$(( ${size%x*} * 2 )); h=$(( ${size#*x} * 2 ))
  ffmpeg -loglevel error -y -framerate 8 -i "$work/c$i/frame_%05d.png" \
    -vf "select='not(mod(n\,2))',scale=$w:$h:flags=neighbor,pad=$((w + 4)):$((h + 4)):2:2:color=gray,tile=${frames}x1" -frames:v 1 "$work/row$i.png"
  inputs+=(-i "$work/row$i.png")
done
mkdir -p docs
ffmpeg -loglevel error -y "${inputs[@]}" -filter_complex "vstack=inputs=${#prompts[@]}" docs/contact-sheet.png
echo "wrote docs/contact-sheet.png"
