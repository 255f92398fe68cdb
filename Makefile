# PGXS build of the ig_identity extension (C++17).
# src/core/ is plain C++ (no PostgreSQL headers) and is also built by
# CMakeLists.txt for its unit tests; src/pg/ is the PostgreSQL side.

EXTENSION  = ig_identity
MODULE_big = ig_identity
# Released install scripts are frozen and shipped as they are; the newest
# version's full script is assembled from src/sql/.
DATA       = ig_identity--1.0.sql ig_identity--1.0--1.1.sql
DATA_built = ig_identity--1.1.sql
PGFILEDESC = "ig_identity - Instagram inbox identity cache"

CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
PG_SRCS   = $(sort $(wildcard src/pg/*.cpp))
OBJS      = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

PG_CONFIG ?= pg_config

# The standard test entry points (see "Tests" in the README):
#   make installcheck            pg_regress, then the isolation specs, then TAP
#   make installcheck-regress    pg_regress only (sql/, expected/)
#   make installcheck-isolation  pg_isolation_regress only (test/isolation/)
#   make prove_installcheck      the TAP suite only (test/t/, PROVE_TESTS=... for some)
# Each runs against the installation PG_CONFIG names, in a private temporary
# instance that preloads the library (--temp-instance, as pg_cron does), with
# the local Graph API mock started and stopped around it by test/with_mock.
# Run them as a user that may run initdb (not root).
REGRESS      = $(shell sed -n 's/^test: *//p' $(CURDIR)/test/regress_schedule)
REGRESS_OPTS = --temp-instance=$(CURDIR)/tmp_check_regress --dbname=contrib_regression
ISOLATION    = $(shell sed -n 's/^test: *//p' $(CURDIR)/test/isolation/schedule)
ISOLATION_OPTS = --temp-instance=$(CURDIR)/tmp_check_iso --inputdir=$(CURDIR)/test/isolation \
                 --outputdir=$(CURDIR)/output_iso --dbname=contrib_regression
TAP_TESTS    = 1
PROVE_TESTS ?= test/t/*.pl
EXTRA_CLEAN  = tmp_check tmp_check_regress tmp_check_iso output_iso tmp_mock results regression.diffs regression.out log

# No LLVM bitcode for JIT inlining: our code is not worth inlining into
# expressions, and C++ bitcode would need a matching clang++.
override with_llvm = no

# The library knows which extension version it was built with (the worker
# says so when a database is still at an older one): default_version, read
# from the control file so that it is written once.
IGID_EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(CURDIR)/ig_identity.control)
PG_CPPFLAGS = -Isrc -DIGID_EXTVERSION='"$(IGID_EXTVERSION)"'
PG_CXXFLAGS = -std=c++17 -fPIC -MMD -MP -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-register $(IGID_EXTRA_CXXFLAGS)
# The test command builds with IGID_WERROR=1: no warning lands. A user's build
# on a newer compiler is not stopped by a new warning.
ifdef IGID_WERROR
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK  = $(shell pkg-config --libs libcurl jansson libcrypto) -lstdc++

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every test runner goes through test/with_mock, which starts the mock on a
# free loopback port, writes the temporary instance's configuration
# (test/pg_test.conf.in, pointed at that port), and stops the mock after.
# These are PGXS's own definitions with the wrapper in front.
pg_regress_installcheck = $(CURDIR)/test/with_mock \
    $(top_builddir)/src/test/regress/pg_regress --inputdir=$(srcdir) \
    --bindir='$(bindir)' $(pg_regress_locale_flags) $(EXTRA_REGRESS_OPTS)
pg_isolation_regress_installcheck = $(CURDIR)/test/with_mock \
    $(top_builddir)/src/test/isolation/pg_isolation_regress \
    --bindir='$(bindir)' $(pg_regress_locale_flags) $(EXTRA_REGRESS_OPTS)
# The TAP tests start their own mocks and clusters; they find the mock, the
# fixtures and test/t/lib from IGID_SRC.
export IGID_SRC ?= $(CURDIR)

installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
prove_installcheck:
	$(prove_installcheck)
.PHONY: installcheck-regress installcheck-isolation prove_installcheck

# The newest install script is assembled from src/sql/, one concern per file,
# in file-name order (the restore-detection block in 90_ must stay last).
ig_identity--1.1.sql: $(sort $(wildcard src/sql/*.sql))
	cat $^ > $@

# PGXS passes PG_CXXFLAGS only to its own rules; make sure .cpp files use them.
%.o: %.cpp
	$(CXX) $(CXXFLAGS) $(PG_CXXFLAGS) $(CPPFLAGS) -c -o $@ $<

# Rebuild an object when a header it includes changes (-MMD -MP above).
-include $(OBJS:.o=.d)

clean: clean-igid
clean-igid:
	rm -f src/core/*.o src/pg/*.o src/core/*.d src/pg/*.d
.PHONY: clean-igid

# The release tarball PGXN expects: one top directory named
# ig_identity-<version>, made by git archive from the committed tree (files
# marked export-ignore in .gitattributes stay out).
IGID_DIST_VERSION := $(shell sed -n 's/^   "version": "\(.*\)",$$/\1/p' $(CURDIR)/META.json | head -n 1)
dist:
	@git -C $(CURDIR) rev-parse --git-dir >/dev/null 2>&1 || \
	    { echo "make dist needs a git checkout (it archives the committed tree)" >&2; exit 1; }
	git -C $(CURDIR) archive --format=zip --prefix=ig_identity-$(IGID_DIST_VERSION)/ \
	    -o $(CURDIR)/ig_identity-$(IGID_DIST_VERSION).zip HEAD
.PHONY: dist
