# zkctl: build, test, demo and install. The two commands a newcomer needs: `make demo`, `make test`.
SHELL := /bin/bash

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
DESTDIR ?=

SWIFT ?= swift
# Debian packages the build, the tests and the demo need: the C client, a real ZooKeeper server
# (Java), and the peers and tools the tests drive (jq, sqlite3, kazoo).
APT_PACKAGES = libzookeeper-mt-dev zookeeper zookeeper-bin jq sqlite3 python3-kazoo zsh fish mandoc nftables
# The servlet API the AdminServer's Jetty needs (zookeeper.jar's manifest does not name it).
APT_PACKAGES += libservlet-api-java
# TLS: OpenSSL for the relay; Netty (the server's TLS port), openssl and keytool for the tests' keys.
APT_PACKAGES += libssl-dev libnetty-java openssl
# zkctl shell: line editing and history (libedit); its terminal tests drive tmux.
APT_PACKAGES += libedit-dev tmux
# Apache Curator and a JDK for the interop tests' Java peer (Tests/Peers/CuratorPeer.java).
APT_PACKAGES += libcurator-framework-java libcurator-recipes-java libcurator-discovery-java openjdk-17-jdk-headless
TEST_TMP = $(CURDIR)/.tmp
# The package's tools: dpkg-deb and dpkg-shlibdeps (make deb), lintian; bash-completion and man-db
# let the package test find the installed completion and man page as a user's shell would.
APT_PACKAGES += dpkg-dev lintian bash-completion man-db
# GCC's static C++ runtime, which release builds link in (scripts/link); the Swift toolchain's own
# prerequisites include it, named here so that a release build never meets its absence.
APT_PACKAGES += libstdc++-12-dev
# The one version: ZKCtl.version in Sources/ZKCtl/ZKCtl.swift. `zkctl --version` and the man page
# print it; the package is named after it (make deb checks the binary agrees).
VERSION := $(shell sed -n 's/^ *public static let version = "\([^"]*\)"$$/\1/p' Sources/ZKCtl/ZKCtl.swift)

.PHONY: all deps build release test test-unit demo generate install uninstall clean help

all: build

help:
	@echo "make demo      install what is missing, build, and show zkctl on a throwaway server"
	@echo "make test      install what is missing and run the whole test suite"
	@echo "make build     debug build (.build/debug/zkctl); make release: optimised build"
	@echo "make deb      dist/zkctl_$(VERSION)_<arch>.deb (make test-deb tests it)"
	@echo "make install   install into \$$(DESTDIR)\$$(PREFIX) (default /usr/local); make uninstall"

# Installs only what is missing, with apt-get (through sudo when not root).
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; \
	  else echo "make deps: not root and no sudo; run as root: apt-get update && apt-get install -y$$missing" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
	    || { echo "make deps: apt-get failed; run: apt-get update && apt-get install -y$$missing" >&2; exit 1; }; \
	fi; \
	command -v $(SWIFT) >/dev/null 2>&1 || { echo "make deps: no Swift toolchain on PATH (swift 6 is needed)" >&2; exit 1; }

build:
	$(SWIFT) build

# Release builds link the Swift runtime and Foundation statically, into a position-dependent
# executable: a one-shot command starts about a third faster, and its peak RSS drops by about
# 7 MiB, as the loader has far fewer relocations to apply (benchmarks/FINDINGS.md, finding 2).
# scripts/link comes first on the linker's search path: its libstdc++.so is a linker script that
# takes the C++ runtime the Swift runtime needs from GCC's static archive (finding 13); GCC's
# own runtime is linked from its archive too (-static-libgcc: no libgcc_s to load, and no CPU
# probe in its constructor). The frontend flag makes our modules reach generic types' metadata
# through accessor functions instead of demangling their names at run time, which looked up
# conformances on every first use (finding 14). The last line puts each of our functions in a
# section of its own, and has the linker lay out first the functions a one-shot command runs, as
# scripts/link/hot-sections lists them: they fill a few pages instead of touching 85 scattered
# over 7 MB (§16; `make link-order` profiles the commands again and rewrites the list).
RELEASE_FLAGS = -c release -Xswiftc -static-stdlib -Xswiftc -Xclang-linker -Xswiftc -no-pie --disable-local-rpath -Xlinker -L$(CURDIR)/scripts/link \
	-Xswiftc -Xclang-linker -Xswiftc -static-libgcc \
	-Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors \
	-Xswiftc -Xfrontend -Xswiftc -function-sections -Xlinker --section-ordering-file=$(CURDIR)/scripts/link/hot-sections
release:
	$(SWIFT) build $(RELEASE_FLAGS)

# The whole suite: unit tests, the client against real servers, and the binary end to end
# (but for PackageTests, which needs a release build: make test-deb).
# A skipped test is a failure here: a test that cannot reach its server must never pass quietly.
test: deps build
	@mkdir -p $(TEST_TMP)
	@rm -f $(TEST_TMP)/test.log
	@status=0; \
	ZKCTL_BIN=$(CURDIR)/.build/debug/zkctl ZKCTL_TEST_TMP=$(TEST_TMP)/zk-tests \
	  $(SWIFT) test --disable-swift-testing --skip PackageTests 2>&1 | tee $(TEST_TMP)/test.log; status=$${PIPESTATUS[0]}; \
	scripts/zkserver reap $(TEST_TMP)/zk-tests >/dev/null 2>&1 || true; \
	if [ $$status -ne 0 ]; then echo "make test: tests failed" >&2; exit $$status; fi; \
	if grep -E "with [1-9][0-9]* tests? skipped|Test skipped" $(TEST_TMP)/test.log >/dev/null; then \
	  echo "make test: tests were skipped; that counts as a failure" >&2; exit 1; fi; \
	summary=$$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with" $(TEST_TMP)/test.log | tail -n 1); \
	if [ -z "$$summary" ]; then echo "make test: no test ran" >&2; exit 1; fi; \
	ran=$$(echo "$$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/'); \
	failed=$$(echo "$$summary" | sed -E 's/.* with ([0-9]+) failures?.*/\1/'); \
	echo "zkctl: $$((ran - failed)) passed, $$failed failed"

# Pure-logic tests only (no servers): the parser, settings and formats.
test-unit: build
	$(SWIFT) test --filter ZKCtlTests

demo: deps build
	@scripts/demo

# The completion scripts and the man page are generated from the command table and committed, so a
# packager needs no Swift; a test fails when they differ from what the binary writes.
generate: build
	.build/debug/zkctl __generate bash > completions/zkctl.bash
	.build/debug/zkctl __generate zsh > completions/_zkctl
	.build/debug/zkctl __generate fish > completions/zkctl.fish
	.build/debug/zkctl __generate man > man/zkctl.1

# INSTALL_BIN: an already built binary to install instead of a fresh release build.
INSTALL_BIN ?=
install:
	@if [ -z "$(INSTALL_BIN)" ]; then $(SWIFT) build $(RELEASE_FLAGS); fi
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 755 $${INSTALL_BIN:-$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/zkctl} $(DESTDIR)$(BINDIR)/zkctl
	install -m 644 man/zkctl.1 $(DESTDIR)$(MANDIR)/man1/zkctl.1
	install -m 644 completions/zkctl.bash $(DESTDIR)$(BASHCOMPDIR)/zkctl
	install -m 644 completions/_zkctl $(DESTDIR)$(ZSHCOMPDIR)/_zkctl
	install -m 644 completions/zkctl.fish $(DESTDIR)$(FISHCOMPDIR)/zkctl.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/zkctl $(DESTDIR)$(MANDIR)/man1/zkctl.1 $(DESTDIR)$(BASHCOMPDIR)/zkctl \
	  $(DESTDIR)$(ZSHCOMPDIR)/_zkctl $(DESTDIR)$(FISHCOMPDIR)/zkctl.fish

clean:
	-scripts/zkserver reap $(TEST_TMP) >/dev/null 2>&1
	rm -rf .build $(TEST_TMP)
	rm -rf $(DEB_SCRATCH) dist

# Fuzzing: libFuzzer + AddressSanitizer over the argument parser, the server-list parser, the INI
# reader, the JSON parser and the export reader (Fuzz/). FUZZ_SECONDS per target (default 60).
# SwiftPM cannot build a fuzzer without a Package.swift change, so Fuzz/build.sh calls swiftc.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= parser servers ini json backup
.PHONY: fuzz test-faults test-asan
fuzz:
	Fuzz/build.sh
	@status=0; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  FUZZ_SECONDS=$(FUZZ_SECONDS) Fuzz/run.sh $$t > Fuzz/.out/$$t.log 2>&1 || { status=1; echo "fuzz: $$t FAILED (see Fuzz/.out/$$t.log and Fuzz/.out/artifacts/)"; }; \
	  grep -aE "stat::number_of_executed_units|INVARIANT|ERROR: AddressSanitizer" Fuzz/.out/$$t.log | head -3; \
	done; exit $$status

# The fault suite alone (it is part of `make test` too): a 3-server ensemble whose members are
# stopped, killed and restarted while commands run; no quorum; unreachable servers.
test-faults: deps build
	ZKCTL_BIN=$(CURDIR)/.build/debug/zkctl ZKCTL_TEST_TMP=$(TEST_TMP)/zk-tests $(SWIFT) test --disable-swift-testing --filter FaultTests

# The client tests and the end-to-end tests that exercise sessions, errors and credentials, with
# zkctl and the tests built with AddressSanitizer (scratch path .build-asan). Memory errors fail the
# run; leak reports are off by default because they go to stderr and change exit codes, which the
# tests assert: ASAN_OPTIONS=detect_leaks=1 make test-asan lists them (with stacks) instead.
ASAN_TESTS ?= ZooKeeperTests|FaultTests.testUnreachable|FaultTests.testCommandsUnder|FaultTests.testNoQuorum|CredentialTests|HostileInputTests
test-asan: deps
	$(SWIFT) build --build-tests -Xswiftc -sanitize=address --scratch-path .build-asan
	ZKCTL_BIN=$(CURDIR)/.build-asan/debug/zkctl ZKCTL_TEST_TMP=$(TEST_TMP)/zk-tests-asan \
	  ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1} \
	  $(SWIFT) test --skip-build --disable-swift-testing --scratch-path .build-asan --filter '$(ASAN_TESTS)'

# The benchmark: a release build, its own throwaway server, zkctl timed next to a C reference and
# the peers; writes benchmarks/RESULTS.md. BENCH_1M=1 adds the 1M-znode runs; other settings are
# listed at the top of benchmarks/bench.sh.
.PHONY: bench
bench: deps
	BENCH_SWIFT_FLAGS="$(RELEASE_FLAGS)" benchmarks/bench.sh

# scripts/link/hot-sections from a fresh trace of the common one-shot commands (valgrind, installed
# when missing, on a throwaway server), read against the linker's map of the traced binary (the
# binary is removed first, so that it is linked again with the map); then the binary is linked
# again with the new list, as SwiftPM does not relink when only the list changes. Commit what it
# writes.
.PHONY: link-order
link-order: deps
	@$(MAKE) -s deps APT_PACKAGES=valgrind
	bin="$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/zkctl"; map=$$(mktemp /tmp/zkctl-link-map.XXXXXX); \
	rm -f "$$bin"; status=0; \
	{ $(SWIFT) build $(RELEASE_FLAGS) -Xlinker -Map="$$map" && scripts/link-order "$$bin" "$$map"; } || status=$$?; \
	rm -f "$$map" "$$bin"; exit $$status
	$(SWIFT) build $(RELEASE_FLAGS)

# The version, for scripts and the package test.
.PHONY: version
version:
	@echo $(VERSION)

.PHONY: deb test-deb
# dist/zkctl_$(VERSION)_<arch>.deb: the release binary stripped, Depends from what it links, the
# man page gzipped, the completions in Debian's vendor directories; lintian must report no error.
# Its own scratch path, so that it can run while `swift test` holds .build (the package test).
DEB_SCRATCH ?= .build-deb
deb:
	$(SWIFT) build $(RELEASE_FLAGS) --scratch-path $(DEB_SCRATCH)
	scripts/build-deb "$$($(SWIFT) build $(RELEASE_FLAGS) --scratch-path $(DEB_SCRATCH) --show-bin-path)/zkctl" "$(VERSION)" dist

# The package test alone: it builds the package (a release build, minutes from cold), installs it
# into a throwaway root, uses it against a real server and purges it. `make test` leaves it out.
test-deb: deps build
	ZKCTL_BIN=$(CURDIR)/.build/debug/zkctl ZKCTL_TEST_TMP=$(TEST_TMP)/zk-tests \
	  $(SWIFT) test --disable-swift-testing --filter PackageTests; status=$$?; \
	scripts/zkserver reap $(TEST_TMP)/zk-tests >/dev/null 2>&1 || true; exit $$status
