# SPDX-License-Identifier: MIT
# Front door. `make demo` and `make test` work on a fresh Debian 12 machine (as root, or with sudo):
# both install what is missing first.
JOBS ?= $(shell nproc)
DEMO_OUT ?= build/demo
ATTN := build/release/bin/attn

.PHONY: all deps build test test-release test-asan demo bench fuzz format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

# Release suite, then the same suite under ASan+UBSan.
test: test-release test-asan

test-release: build
	ctest --preset release -j $(JOBS)

test-asan: deps
	cmake --preset asan-ubsan
	cmake --build --preset asan-ubsan -j $(JOBS)
	ctest --preset asan-ubsan -j $(JOBS)

demo: build
	@mkdir -p $(DEMO_OUT)
	@echo "== The lecture's positional encoding of position 1, d = 512 (first values):"
	@$(ATTN) pe --pos 1 --dim 512 | cut -c1-120
	@echo "== Heatmap of PE for 100 positions x 128 dimensions:"
	@$(ATTN) pe --positions 100 --dim 128 --png $(DEMO_OUT)/positional_encoding.png
	@echo "== Attention on a bundled case (window 4 left / 2 right, interval sampling every 2nd key); query 5:"
	@$(ATTN) attend --q tests/golden/attention/window_dilation/q.npy --k tests/golden/attention/window_dilation/k.npy \
	  --v tests/golden/attention/window_dilation/v.npy --window 4,2 --dilation 2 --show 5 \
	  --out $(DEMO_OUT)/out.npy --probs $(DEMO_OUT)/probs.npy --lse $(DEMO_OUT)/lse.npy
	@echo "== A 2-layer transformer learns to reverse sequences (loss curve: $(DEMO_OUT)/train/loss.png):"
	@$(ATTN) train reverse --out-dir $(DEMO_OUT)/train --quiet
	@echo "== Versus an RNN: an LSTM and a transformer of the same size recall a key D steps back ($(DEMO_OUT)/rnn-vs-attention/accuracy.png):"
	@$(ATTN) experiment rnn-vs-attention --quick --quiet --out-dir $(DEMO_OUT)/rnn-vs-attention
	@echo "== Images: a CNN, a ViT and a CNN with a SAGAN block on Fashion-MNIST subsets ($(DEMO_OUT)/images/accuracy.png):"
	@$(ATTN) experiment images --quick --quiet --out-dir $(DEMO_OUT)/images
	@echo "== Where a SAGAN block looks: a CNN+SAGAN trained briefly, its attention for 5 query pixels ($(DEMO_OUT)/sagan/attention-map.png):"
	@$(ATTN) train fashion-mnist --model cnn-sagan --train-size 4000 --epochs 2 --quiet --out-dir $(DEMO_OUT)/sagan | tail -1
	@$(ATTN) image attention-map --model $(DEMO_OUT)/sagan --index 0 --png $(DEMO_OUT)/sagan/attention-map.png
	@echo "== Speech: Kaldi fbank of the five LibriVox clips (24.7 s of real speech; spectrogram $(DEMO_OUT)/speech/fbank.png):"
	@mkdir -p $(DEMO_OUT)/speech
	@$(ATTN) fbank --wav /usr/share/pocketsphinx/test/data/librivox/*.wav --out $(DEMO_OUT)/speech/fbank.npy --png $(DEMO_OUT)/speech/fbank.png
	@echo "== Speech: a 12-layer streaming encoder (random weights) on the same audio, chunks of 16 frames, 4 left chunks, 1 thread:"
	@$(ATTN) speech new-model --out $(DEMO_OUT)/speech/model --seed 1
	@$(ATTN) stream --wav /usr/share/pocketsphinx/test/data/librivox/*.wav --model $(DEMO_OUT)/speech/model \
	  --chunk 16 --left-chunks 4 --threads 1 --quiet
	@echo "== Speech: full vs truncated attention labelling the phonemes of espeak-ng voices never heard in training ($(DEMO_OUT)/speech/experiment/accuracy.png, about a minute):"
	@$(ATTN) experiment speech --quick --quiet --out-dir $(DEMO_OUT)/speech/experiment
	@if ls build/release/python/attn/_attn*.so >/dev/null 2>&1; then \
	  echo "== Attention from Python (import attn), checked against PyTorch:"; \
	  PYTHONPATH=build/release/python /usr/bin/python3 examples/python/tour.py; fi
	@echo "== Outputs in $(DEMO_OUT)/"

bench: build
	build/release/bench/bench_ops --benchmark_min_time=0.2
	build/release/bench/bench_tiles --benchmark_min_time=0.2

# libFuzzer on the .npy, safetensors, IDX and WAV readers for 60 s each (clang).
fuzz:
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS) --target fuzz_npy fuzz_safetensors fuzz_idx fuzz_wav
	mkdir -p .fuzz-corpus/npy .fuzz-corpus/safetensors .fuzz-corpus/idx .fuzz-corpus/wav
	cp -n tests/golden/npy/*.npy .fuzz-corpus/npy/ || true
	cp -n tests/golden/nn/*.safetensors .fuzz-corpus/safetensors/ || true
	cp -n tests/golden/idx/* .fuzz-corpus/idx/ || true
	cp -n tests/golden/wav/* .fuzz-corpus/wav/ || true
	build/fuzz/tests/fuzz_npy -max_total_time=60 .fuzz-corpus/npy
	build/fuzz/tests/fuzz_safetensors -max_total_time=60 .fuzz-corpus/safetensors
	build/fuzz/tests/fuzz_idx -max_total_time=60 .fuzz-corpus/idx
	build/fuzz/tests/fuzz_wav -max_total_time=60 .fuzz-corpus/wav

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf build
