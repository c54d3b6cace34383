# Every command the project runs. CI runs `make test` (via .ci/run).
CARGO ?= cargo
BIN := target/release/zeroimage

.PHONY: demo test lint test-rust test-python test-node bench bench-quick deps clean dist test-dist fuzz fuzz-short

## demo: build the zeroimage CLI and an image of a static example program, offline
demo:
	$(CARGO) build --release -p zeroimage
	gcc -static -O2 -o target/hello examples/hello/hello.c
	$(BIN) build target/hello --from builtin:static -o target/hello.tar --tag hello:demo
	@echo "→ target/hello.tar: docker load -i target/hello.tar && docker run --rm hello:demo"

## test: install what the tests need, then run every suite (Rust, real tools, Python, Node)
test:
	bash scripts/test.sh

## dist: the release artifacts this machine builds, into dist/: the manylinux2014 abi3 wheel, the
## sdist, the npm main + linux-x64-gnu tarballs and the static CLI (scripts/dist.sh)
dist:
	bash scripts/dist.sh

## test-dist: install the dist/ artifacts without Rust and build images with them (scripts/test-dist.sh)
test-dist:
	bash scripts/test-dist.sh dist

deps:
	bash scripts/install-test-deps.sh

## fuzz: every fuzz target for 30 minutes (scripts/fuzz.sh long [SECONDS]); fuzz-short: 5 s each
fuzz:
	bash scripts/fuzz.sh long

fuzz-short:
	bash scripts/fuzz.sh short

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p zeroimage

bench:
	bash bench/run.sh

bench-quick:
	bash bench/run.sh --quick

clean:
	$(CARGO) clean
