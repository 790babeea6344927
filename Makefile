# sim_metrics — PGXS build.
#   make && make install          build and install into the pg_config found
#   make installcheck             pg_regress (temp instance, worker paused) + TAP
#   make model-check              the pure-C model's, detector's, NAB scoring's, forecaster's and alert predictor's unit tests under ASan/UBSan
#   make model-valgrind           the same under valgrind
#   make HIREDIS_STATIC=1         hiredis linked in statically, symbols hidden
EXTENSION = sim_metrics
MODULE_big = sim_metrics
DATA = sim_metrics--1.0.sql sim_metrics--1.6.sql sim_metrics--1.0--1.1.sql sim_metrics--1.1--1.2.sql sim_metrics--1.2--1.3.sql sim_metrics--1.3--1.4.sql sim_metrics--1.4--1.5.sql sim_metrics--1.5--1.6.sql sim_metrics--1.6--1.7.sql sim_metrics--1.7--1.8.sql sim_metrics--1.8--1.9.sql sim_metrics--1.9--1.10.sql
# the 1.10 base script is 1.6 plus its updates (CREATE EXTENSION drops \echo lines)
DATA_built = sim_metrics--1.10.sql
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
PGFILEDESC = "sim_metrics - server-fleet metrics simulator"

PG_CONFIG ?= pg_config
# -ffp-contract=off: no fused multiply-add, so the model gives the same bits
# on every machine and in the unit tests
PG_CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -ffp-contract=off
# hiredis: shared by default; HIREDIS_STATIC=1 links Debian's libhiredis.a
# into the module with its symbols hidden, so the module needs only libc
# (what images that accept only self-contained libraries want)
ifdef HIREDIS_STATIC
SHLIB_LINK += $(shell $(CC) -print-file-name=libhiredis.a) -Wl,--exclude-libs,ALL
else
SHLIB_LINK += -lhiredis
endif

REGRESS = sim_metrics_setup sim_metrics_model sim_metrics_api sim_metrics_history sim_metrics_scenarios sim_metrics_dashboard sim_metrics_backfill sim_metrics_detect sim_metrics_forecast sim_metrics_current
REGRESS_OPTS = --temp-instance=./tmp_check_regress --temp-config=./test/regress.conf --dbname=contrib_regression
TAP_TESTS = 1
EXTRA_CLEAN = tmp_check_regress test/model_test test/model_test_vg test/detect_test test/detect_test_vg test/nab_test test/nab_test_vg test/forecast_test test/forecast_test_vg test/alerts_test test/alerts_test_vg bench/nab_eval

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sim_metrics--1.10.sql: sim_metrics--1.6.sql sim_metrics--1.6--1.7.sql sim_metrics--1.7--1.8.sql sim_metrics--1.8--1.9.sql sim_metrics--1.9--1.10.sql
	cat $^ > $@

# PGXS does not track headers; every object depends on all of ours.
$(OBJS): $(wildcard src/*.h)

MODEL_SRC = src/model.c test/model_test.c
MODEL_CFLAGS = -std=c11 -g -Wall -Wextra -Werror -ffp-contract=off -Isrc -Itest

# the detector and NAB's scoring are pure C too (test/detect_test.c,
# test/nab_test.c); bench/nab_eval checks the scoring on a NAB checkout
DETECT_SRC = src/detect.c src/model.c src/nab.c test/detect_test.c
NAB_TEST_SRC = src/nab.c test/nab_test.c
FORECAST_TEST_SRC = src/forecast.c test/forecast_test.c
ALERTS_TEST_SRC = src/alerts.c test/alerts_test.c
SAN_FLAGS = -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

test/model_test: $(MODEL_SRC) src/model.h
	$(CC) $(MODEL_CFLAGS) $(SAN_FLAGS) $(MODEL_SRC) -lm -o $@

test/model_test_vg: $(MODEL_SRC) src/model.h
	$(CC) $(MODEL_CFLAGS) -O2 $(MODEL_SRC) -lm -o $@

test/detect_test: $(DETECT_SRC) src/detect.h src/model.h src/nab.h test/tap.h
	$(CC) $(MODEL_CFLAGS) $(SAN_FLAGS) $(DETECT_SRC) -lm -o $@

test/detect_test_vg: $(DETECT_SRC) src/detect.h src/model.h src/nab.h test/tap.h
	$(CC) $(MODEL_CFLAGS) -O2 $(DETECT_SRC) -lm -o $@

test/nab_test: $(NAB_TEST_SRC) src/nab.h
	$(CC) $(MODEL_CFLAGS) $(SAN_FLAGS) $(NAB_TEST_SRC) -lm -o $@

test/nab_test_vg: $(NAB_TEST_SRC) src/nab.h
	$(CC) $(MODEL_CFLAGS) -O2 $(NAB_TEST_SRC) -lm -o $@

test/forecast_test: $(FORECAST_TEST_SRC) src/forecast.h test/tap.h test/rng.h
	$(CC) $(MODEL_CFLAGS) $(SAN_FLAGS) $(FORECAST_TEST_SRC) -lm -o $@

test/forecast_test_vg: $(FORECAST_TEST_SRC) src/forecast.h test/tap.h test/rng.h
	$(CC) $(MODEL_CFLAGS) -O2 $(FORECAST_TEST_SRC) -lm -o $@

test/alerts_test: $(ALERTS_TEST_SRC) src/alerts.h test/tap.h test/rng.h
	$(CC) $(MODEL_CFLAGS) $(SAN_FLAGS) $(ALERTS_TEST_SRC) -lm -o $@

test/alerts_test_vg: $(ALERTS_TEST_SRC) src/alerts.h test/tap.h test/rng.h
	$(CC) $(MODEL_CFLAGS) -O2 $(ALERTS_TEST_SRC) -lm -o $@

bench/nab_eval: src/nab.c src/nab.h bench/nab_eval.c
	$(CC) $(MODEL_CFLAGS) -O2 src/nab.c bench/nab_eval.c -lm -o $@

.PHONY: model-check model-valgrind
model-check: test/model_test test/detect_test test/nab_test test/forecast_test test/alerts_test
	./test/model_test
	./test/detect_test
	./test/nab_test
	./test/forecast_test
	./test/alerts_test

model-valgrind: test/model_test_vg test/detect_test_vg test/nab_test_vg test/forecast_test_vg test/alerts_test_vg
	valgrind --error-exitcode=1 --leak-check=full -q ./test/model_test_vg
	valgrind --error-exitcode=1 --leak-check=full -q ./test/detect_test_vg
	valgrind --error-exitcode=1 --leak-check=full -q ./test/nab_test_vg
	valgrind --error-exitcode=1 --leak-check=full -q ./test/forecast_test_vg
	valgrind --error-exitcode=1 --leak-check=full -q ./test/alerts_test_vg
