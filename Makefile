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

# No LLVM bitcode for JIT inlining: our code is not worth inlining into
# expressions, and C++ bitcode would need a matching clang++.
override with_llvm = no

PG_CPPFLAGS = -Isrc
PG_CXXFLAGS = -std=c++17 -fPIC -MMD -MP -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-register $(IGID_EXTRA_CXXFLAGS)
SHLIB_LINK  = $(shell pkg-config --libs libcurl jansson libcrypto) -lstdc++

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

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
