# The two commands of the README. Each sets up what it needs first (scripts/setup.sh).
PY := .venv/bin/python

.PHONY: lab test lint bench

lab:
	@scripts/setup.sh base
	$(PY) -m llm_workings lab

# The style check runs first and fails the suite (CI runs `make test`).
# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q; status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

lint:
	@scripts/setup.sh test
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# The benchmarks run peers beside ours: TransformerLens, Captum, SAELens and PEFT (the test extra) and the "bench" extra.
# nanoGPT is never vendored: bench_nanogpt.py runs a checkout you name with NANOGPT=.
bench:
	@scripts/setup.sh bench
	$(PY) bench/bench_nn.py
	$(PY) bench/bench_lab.py
	$(PY) bench/bench_browser.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_transformer.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_patching.py
	$(PY) bench/bench_bpe.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_tokens.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_heads.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_saliency.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_patching_page.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_steering.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_lab_training.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_sae.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_lora.py
	@if [ -n "$(NANOGPT)" ]; then $(PY) bench/bench_nanogpt.py --nanogpt "$(NANOGPT)"; \
	else echo "bench_nanogpt skipped: give a local nanoGPT checkout, make bench NANOGPT=/path/to/nanoGPT"; fi
