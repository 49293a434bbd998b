# Two commands for a newcomer: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps lint bench soak release install install-files

# libpcap's headers and pkg-config file, from Debian/Ubuntu, installed only when missing.
deps:
	@if ! { dpkg -s libpcap-dev >/dev/null 2>&1 || pkg-config --exists libpcap 2>/dev/null; }; then \
		echo "installing libpcap-dev (needs apt)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpcap-dev >/dev/null; \
	fi

release: deps
	$(CARGO) build --release

# The main job on the bundled capture: a table of SMTP sessions with verdicts.
demo: release
	./target/release/smtpscope --no-tui -r captures/demo.pcap

# Every test: unit, accuracy on the bundled and (when present) the shared public captures.
# Tests that cannot run here (no ../shared, not root, no tmux) leave a marker in SKIPPED; one line
# per skipped suite is printed after cargo's output (SMTPSCOPE_NO_SKIP=1 makes a skip a failure).
SKIPPED := $(or $(CARGO_TARGET_DIR),target)/tmp/smtpscope-skipped
test: deps
	@rm -rf $(SKIPPED)
	@$(CARGO) test --all-targets; rc=$$?; \
	for d in $(SKIPPED)/*/; do \
		[ -f "$$d/why" ] || continue; \
		echo "SKIPPED $$(cat "$$d/why") ($$(ls "$$d" | grep -vc '^why$$') tests)"; \
	done; \
	exit $$rc

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Throughput and peak RSS on a large lab capture (root: builds it with ../shared/lab).
# Floods and limits (issue figures): SCALE=0.01 for a quick run.
floods: deps
	scripts/floods.sh $(or $(SCALE),1)

bench: deps
	scripts/bench.sh

# Sensor soak (root): replayed traffic through check -i with rotation, the ring and metrics for
# SOAK_SECONDS (default 600); figures for BENCHMARKS.md.
soak: deps
	scripts/soak.sh

# Install the binary, its man pages and shell completions under PREFIX (DESTDIR for packaging).
# Pages and completions are generated from the binary's own option definitions.
PREFIX ?= /usr/local
BIN ?= target/release/smtpscope
install: release install-files

install-files:
	install -Dm755 $(BIN) $(DESTDIR)$(PREFIX)/bin/smtpscope
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN) generate man "$$tmp/man" && \
	install -Dm644 -t $(DESTDIR)$(PREFIX)/share/man/man1 "$$tmp"/man/*.1 && \
	$(BIN) generate completions bash > "$$tmp/bash" && \
	$(BIN) generate completions zsh > "$$tmp/zsh" && \
	$(BIN) generate completions fish > "$$tmp/fish" && \
	install -Dm644 "$$tmp/bash" $(DESTDIR)$(PREFIX)/share/bash-completion/completions/smtpscope && \
	install -Dm644 "$$tmp/zsh" $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_smtpscope && \
	install -Dm644 "$$tmp/fish" $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/smtpscope.fish
