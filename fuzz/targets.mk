# The fuzz targets and what each is linked from, for fuzz/run.sh (GNU make,
# Debian's clang, ASan + UBSan + libFuzzer). Outside Bazel: Bazel's toolchain
# here is GCC, which has no libFuzzer.
#
#   make -f fuzz/targets.mk ROOT=. OUT=/tmp/build -j2 all
#
# To add a target NAME: write fuzz/NAME_fuzzer.cc, add NAME to TARGETS, list
# the project sources it needs in NAME_SRCS and its libraries in NAME_LIBS,
# and seed fuzz/corpus/NAME/ (docs/fuzzing.md).

ROOT ?= .
OUT ?= /tmp/longshore-fuzz-build
# make's own default is g++, which has no libFuzzer.
ifeq ($(origin CXX),default)
CXX := clang++
endif
PROTOC ?= protoc

TARGETS := dockerfile dockerignore context_tar layer_apply add_archive \
           oci_json registry reference build_flags context_manifest

SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
CXXFLAGS := -std=c++17 -g -O1 $(SAN) -fsanitize=fuzzer-no-link \
            -I$(ROOT) -I$(OUT)/gen -MMD -MP
LDFLAGS := $(SAN) -fsanitize=fuzzer

ABSL := -labsl_statusor -labsl_status -labsl_cord -labsl_cordz_info \
  -labsl_cord_internal -labsl_cordz_functions -labsl_cordz_handle \
  -labsl_exponential_biased -labsl_raw_hash_set -labsl_hashtablez_sampler \
  -labsl_hash -labsl_city -labsl_low_level_hash -labsl_str_format_internal \
  -labsl_synchronization -labsl_graphcycles_internal -labsl_stacktrace \
  -labsl_symbolize -labsl_debugging_internal -labsl_demangle_internal \
  -labsl_malloc_internal -labsl_time -labsl_civil_time -labsl_time_zone \
  -labsl_strings -labsl_strings_internal -labsl_strerror \
  -labsl_bad_optional_access -labsl_bad_variant_access -labsl_int128 \
  -labsl_base -labsl_spinlock_wait -labsl_throw_delegate \
  -labsl_raw_logging_internal -labsl_log_severity -lpthread

PLAYGROUND := fuzz/playground.cc

dockerfile_SRCS := dockerfile/build_plan.cc dockerfile/dockerignore.cc \
  dockerfile/image_config.cc dockerfile/instruction_flags.cc \
  dockerfile/parser.cc dockerfile/shell_lex.cc dockerfile/stage_evaluator.cc \
  dockerfile/text_util.cc
dockerfile_LIBS := $(ABSL)

dockerignore_SRCS := dockerfile/dockerignore.cc dockerfile/text_util.cc
dockerignore_LIBS := $(ABSL)

context_tar_SRCS := $(PLAYGROUND) common/tar_extract.cc
context_tar_LIBS := -larchive $(ABSL)

layer_apply_SRCS := $(PLAYGROUND) image/layer_apply.cc image/compression.cc \
  image/oci.cc common/errno_status.cc common/log.cc common/sha256.cc
layer_apply_LIBS := -larchive -lzstd -lisal -lz -lcrypto $(ABSL)

add_archive_SRCS := $(PLAYGROUND) worker/archive_extract.cc \
  worker/in_root.cc sandbox/in_root.cc common/errno_status.cc
add_archive_LIBS := -larchive $(ABSL)

oci_json_SRCS := image/oci.cc common/sha256.cc common/errno_status.cc
oci_json_LIBS := -lcrypto $(ABSL)

registry_SRCS := image/registry_parse.cc image/oci.cc common/sha256.cc \
  common/errno_status.cc
registry_LIBS := -lcrypto $(ABSL)

reference_SRCS := image/reference.cc client/build_flags.cc \
  sandbox/options.cc sandbox/limits.cc common/file_util.cc common/log.cc \
  common/sha256.cc common/errno_status.cc $(OUT)/gen/proto/longshore.pb.cc
reference_LIBS := -lprotobuf -lcrypto $(ABSL)

build_flags_SRCS := client/build_flags.cc worker/output_compression.cc \
  sandbox/options.cc sandbox/limits.cc \
  image/content_store.cc image/compression.cc image/oci.cc \
  common/file_util.cc common/log.cc common/sha256.cc common/errno_status.cc \
  $(OUT)/gen/proto/longshore.pb.cc
build_flags_LIBS := -lprotobuf -lzstd -lisal -lz -lcrypto $(ABSL)

context_manifest_SRCS := common/context_manifest.cc common/sha256.cc \
  common/errno_status.cc $(OUT)/gen/proto/longshore.pb.cc
context_manifest_LIBS := -lprotobuf -lcrypto $(ABSL)

.PHONY: all
all: $(addprefix $(OUT)/bin/,$(addsuffix _fuzzer,$(TARGETS))) \
     $(OUT)/bin/playground_selftest

# Objects of project sources under OUT/obj/<path>.o; generated sources (the
# protobuf message code) under OUT/obj/gen/.
obj = $(patsubst $(OUT)/gen/%.cc,$(OUT)/obj/gen/%.o,$(patsubst %.cc,$(OUT)/obj/%.o,$(filter-out $(OUT)/%,$(1)))) \
      $(patsubst $(OUT)/gen/%.cc,$(OUT)/obj/gen/%.o,$(filter $(OUT)/%,$(1)))

$(OUT)/obj/gen/%.o: $(OUT)/gen/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(OUT)/obj/%.o: $(ROOT)/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(OUT)/gen/proto/longshore.pb.cc $(OUT)/gen/proto/longshore.pb.h: $(ROOT)/proto/longshore.proto
	@mkdir -p $(OUT)/gen
	$(PROTOC) --proto_path=$(ROOT) --cpp_out=$(OUT)/gen $(ROOT)/proto/longshore.proto

# Sources that include the generated header wait for it.
$(OUT)/obj/client/build_flags.o $(OUT)/obj/worker/output_compression.o \
$(OUT)/obj/fuzz/reference_fuzzer.o $(OUT)/obj/fuzz/build_flags_fuzzer.o \
$(OUT)/obj/common/context_manifest.o \
$(OUT)/obj/fuzz/context_manifest_fuzzer.o: \
  $(OUT)/gen/proto/longshore.pb.h

define target_rule
$(OUT)/bin/$(1)_fuzzer: $(call obj,fuzz/$(1)_fuzzer.cc $($(1)_SRCS))
	@mkdir -p $(OUT)/bin
	$(CXX) $(LDFLAGS) $$^ $($(1)_LIBS) -o $$@
endef
$(foreach t,$(TARGETS),$(eval $(call target_rule,$(t))))

# Not a fuzzer: shows that the archive targets' escape check catches escapes.
$(OUT)/bin/playground_selftest: $(call obj,fuzz/playground_selftest.cc $(PLAYGROUND))
	@mkdir -p $(OUT)/bin
	$(CXX) $(SAN) $^ -o $@

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)
