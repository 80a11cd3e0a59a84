# Two commands for a new user: `make demo` (the whole pipeline on synthetic data) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv install demo pretrain pretrain-raw pretrain-srgb pretrain-xtrans pretrain-gpu test test-fast docs bench lint ui clean

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency pins change; one resolve, pinned by constraints.txt.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]" 2>&1 \
	  | { grep -v "is ignored: it is neither" || true; }
	$(BIN)/python -c "import lowlight, rawpy, torch, mlflow, kfp, dvc, mkdocs, material"
	@# KServe's SDK apart and without its dependencies: only its typed models, for the schema
	@# check of `lowlight models serve-manifest` (tests/kserve_schema.py)
	$(BIN)/pip install -q --upgrade --no-deps --target $(VENV)/kserve-sdk -c constraints.txt kserve 2>&1 \
	  | { grep -v "is ignored: it is neither" || true; }
	touch $(STAMP)

install: $(STAMP)

demo: install
	dvc repro
	@# a photographer's view: the test scenes' RAW files through `lowlight enhance`
	@if ls data/synthetic/Sony/short/1*.dng >/dev/null 2>&1; then \
	  lowlight enhance "data/synthetic/Sony/short/1*.dng" --model models --out reports/enhanced; fi
	@echo
	@echo "Outputs:"
	@echo "  RAW (synthetic SID layout): data/synthetic/Sony/{short,long}/*.dng"
	@echo "  converted images:           data/converted/{short,long}/  (manifest data/converted/converted.parquet)"
	@echo "  pairs:                      data/pairs.parquet"
	@echo "  patches:                    data/patches/{train,val}/part-*.parquet"
	@echo "  models:                     models/generator.pt + generator.json (the model card), discriminator.pt"
	@echo "  training:                   reports/train_history.csv, reports/train_curves.png, reports/samples/"
	@echo "  evaluation report:          reports/report.md  (metrics: reports/metrics.json, grids: reports/grids/)"
	@echo "  enhanced test RAWs:         reports/enhanced/*_enhanced.png  (lowlight enhance)"
	@echo "  registry:                   reports/registration.json; lowlight models list"
	@$(BIN)/python -c "import json; from lowlight.pyfunc import usage; r = json.load(open('reports/registration.json')); a = 'champion' if 'champion' in r['aliases'] else r['aliases'][0]; print(f\"  -> {r['name']} version {r['version']} {r['aliases']}: {r['gate_reason']}\"); print('  load it:', usage('models:/' + r['name'] + '@' + a))"
	@echo "  MLflow runs:                sqlite:///mlruns/mlflow.db  (browse: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db)"

# A recipe's data in the current folder: synth -> convert -> pair -> patch with its params ($(1)),
# the camera's folder under data/synthetic ($(2): its synth.profile's, default Sony)
DATA = lowlight synth data/synthetic $(1) \
  && lowlight convert data/synthetic/$(or $(2),Sony) data/converted $(1) \
  && lowlight pair data/converted data/pairs.parquet $(1) \
  && lowlight patch data/pairs.parquet data/patches $(1)

# The shipped models' recipes, one per kind of input (about 3 hours 15 minutes in all on 2 CPU
# cores: RAW ~90, sRGB ~40, X-Trans ~65); each ends in src/lowlight/pretrained/<input mode>/
# with its card: commit that.
pretrain: pretrain-raw pretrain-srgb pretrain-xtrans

# The RAW model's recipe (pretrain/params.yaml): every stage inside pretrain/ (at most 90
# minutes on 2 CPU cores): an L1 model, then its adversarial fine-tune (the seed's two-step GAN,
# pix2pix's weights: L1 x100 + adversarial x1), both evaluated on test and on validation; the
# one validation favours (both perceptual scores better at <= 0.3 dB PSNR cost, else the L1
# model) becomes src/lowlight/pretrained/bayer/ with its card, which says why. One
# fine-tune epoch: the discriminator's step makes it ~1.4 steps/s here (L1 alone: ~11).
GAN_FINETUNE ?= --init models --lambda-adv 1.0 --epochs 1 --lr 0.0001
pretrain-raw: install
	cd pretrain && $(call DATA) \
	  && lowlight train data/patches models --reports reports \
	  && lowlight train data/patches models-gan --reports reports-gan $(GAN_FINETUNE) \
	  && for m in models models-gan; do r=$${m/models/reports}; \
	       lowlight evaluate $$m data/pairs.parquet --out $$r \
	       && lowlight evaluate $$m data/pairs.parquet --out $$r-val --split val --baselines none \
	       || exit 1; done \
	  && lowlight export pretrained models reports --versus models-gan reports-gan \
	       --validation reports-val reports-gan-val --reproduce "make pretrain"
	@echo "shipped: src/lowlight/pretrained/bayer/ (README.md is its card); reports: pretrain/reports*/report.md"

# The sRGB model's recipe (pretrain/srgb.yaml), inside pretrain/srgb/ (about 40 minutes on 2
# CPU cores: data 3, training 20, evaluate 15-20 (BM3D)): dark JPEGs as a camera makes them
# (synth.output jpeg), one L1 model, evaluated on test against the tools a user would reach for
# (exposure, gamma+CLAHE, LIME, each then BM3D), shipped to src/lowlight/pretrained/rgb/.
SRGB_RECIPE ?= --params ../srgb.yaml
pretrain-srgb: install
	mkdir -p pretrain/srgb && cd pretrain/srgb && $(call DATA,$(SRGB_RECIPE)) \
	  && lowlight train data/patches models --reports reports $(SRGB_RECIPE) \
	  && lowlight evaluate models data/pairs.parquet --out reports $(SRGB_RECIPE) \
	  && lowlight export pretrained models reports $(SRGB_RECIPE) --reproduce "make pretrain-srgb"
	@echo "shipped: src/lowlight/pretrained/rgb/ (README.md is its card); reports: pretrain/srgb/reports/report.md"

# The X-Trans model's recipe (pretrain/xtrans.yaml), inside pretrain/xtrans/ (about 65 minutes
# on 2 CPU cores: data 3, training 52, evaluate 7-10 (BM3D)): synthetic Fujifilm X-T2 frames
# (synth.profile FujiXT2, SID's Fuji/ folder), one L1 model on the packed 6x6 X-Trans mosaic,
# evaluated on test against amplify and amplify+BM3D, shipped to src/lowlight/pretrained/xtrans/.
XTRANS_RECIPE ?= --params ../xtrans.yaml
pretrain-xtrans: install
	mkdir -p pretrain/xtrans && cd pretrain/xtrans && $(call DATA,$(XTRANS_RECIPE),Fuji) \
	  && lowlight train data/patches models --reports reports $(XTRANS_RECIPE) \
	  && lowlight evaluate models data/pairs.parquet --out reports $(XTRANS_RECIPE) \
	  && lowlight export pretrained models reports $(XTRANS_RECIPE) --reproduce "make pretrain-xtrans"
	@echo "shipped: src/lowlight/pretrained/xtrans/ (README.md is its card); reports: pretrain/xtrans/reports/report.md"

# The same recipe scaled up for one GPU (pretrain/gpu.yaml, at most 8 minutes), in pretrain/gpu/;
# compare its report with pretrain/reports' before shipping it (the command it prints).
GPU_RECIPE ?= --params ../gpu.yaml
pretrain-gpu: install
	mkdir -p pretrain/gpu && cd pretrain/gpu && $(call DATA,$(GPU_RECIPE)) \
	  && lowlight train data/patches models --reports reports $(GPU_RECIPE) \
	  && lowlight train data/patches models-gan --reports reports-gan $(GAN_FINETUNE) $(GPU_RECIPE) \
	  && for m in models models-gan; do r=$${m/models/reports}; \
	       lowlight evaluate $$m data/pairs.parquet --out $$r $(GPU_RECIPE) \
	       && lowlight evaluate $$m data/pairs.parquet --out $$r-val --split val --baselines none \
	          $(GPU_RECIPE) || exit 1; done
	@echo "reports: pretrain/gpu/reports*/report.md; to ship it: cd pretrain/gpu && lowlight export \
	pretrained models reports --versus models-gan reports-gan --validation reports-val \
	reports-gan-val $(GPU_RECIPE) --reproduce 'make pretrain-gpu'"

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# Benchmarks write their sections of BENCHMARKS.md; inference uses the demo's data (or pretrain/'s).
bench: demo
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/patches.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/gpu.py

# The documentation site (mkdocs.yml, docs/) into site/; `make test` builds it with --strict
# (tests/test_docs.py). NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2.0.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site
	@echo "docs: site/index.html"

lint: install
	$(BIN)/ruff check src components pipelines infra tests bench
	$(BIN)/ruff format --check src components pipelines infra tests bench

# MLflow's UI on the local store: runs, sample grids, the registry.
ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf data models reports mlruns .pytest_cache bench/_work site
