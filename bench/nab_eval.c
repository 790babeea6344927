/*
 * nab_eval - score the Numenta Anomaly Benchmark corpus with src/nab.c and
 * compare with the scores NAB publishes (results/final_results.json).
 *
 * Build (from the repository root):
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -ffp-contract=off -Isrc \
 *      src/nab.c bench/nab_eval.c -lm -o bench/nab_eval
 *
 * Usage:
 *   nab_eval NAB_DIR [--strict] [-v] [--time K] [DETECTOR ...]
 *   nab_eval NAB_DIR [-v] --scores DIR
 *
 * NAB_DIR is a NAB checkout (labels/combined_windows.json, results/).  The
 * corpus is the label file's keys (58 files); each detector's scores are
 * NAB_DIR/results/<det>/<category>/<det>_<file>.csv (column anomaly_score).
 * With --scores, DIR/<category>/<file>.csv holds "timestamp,value,score"
 * (header first; an empty score is NaN: no detection).
 *
 * Per detector and profile it prints our swept threshold and score, NAB's
 * published score, and our score at NAB's own threshold (first row of
 * results/<det>/<det>_<profile>_scores.csv, full precision from
 * config/thresholds.json when that agrees): NAB published some detectors
 * with thresholds from its pre-2019 local search ("twiddle"), which a full
 * sweep beats, so those match at NAB's threshold but not after a sweep.
 * Then at our threshold: windows detected (tp) and missed (fn), false
 * positive rows (fp) and their onsets (fpev), and a verdict: "ok" (the
 * sweep is within 0.5 of the published score), "ok at NAB thr" (the sweep
 * is higher, and at NAB's threshold we are within 0.5), or "FAIL".
 *
 * Exit status: 2 on bad input; 1 if a published score is not reproduced,
 * i.e. the sweep differs by more than 0.5 and (unless --strict) the score
 * at NAB's threshold does too or the sweep is not the higher; else 0.
 * -v: also the raw scores and NAB's row counts (as in its *_scores.csv).
 * --time K: also time the sweep over the corpus repeated K times.
 */
#define _POSIX_C_SOURCE 200809L

#include "nab.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TOLERANCE 0.5

/* NAB's profile names, in the order of smx_nab_profiles */
static const char *const nab_profile[3] = {
	"standard", "reward_low_FP_rate", "reward_low_FN_rate"
};

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (!p)
	{
		fprintf(stderr, "nab_eval: out of memory\n");
		exit(2);
	}
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
	{
		fprintf(stderr, "nab_eval: out of memory\n");
		exit(2);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

static char *
read_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	size_t		len = 0,
				cap = 0,
				got;

	if (!f)
		return NULL;
	do
	{
		if (cap - len < 65536)
			buf = xrealloc(buf, cap = 2 * cap + 65536);
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
	} while (got > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* ------------------- a small JSON reader for NAB's files ------------------ */

enum
{
	J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ
};

typedef struct Json
{
	int			type;
	double		num;
	char	   *str;
	size_t		n;
	char	  **keys;			/* J_OBJ: n keys, in file order */
	struct Json *items;			/* J_ARR / J_OBJ: n values */
} Json;

static const char *json_err;

static void
json_ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

/* a JSON string (escapes of NAB's files: \" \\ \/ and the usual letters) */
static char *
json_string(const char **p)
{
	const char *s = *p + 1;
	size_t		cap = 16,
				n = 0;
	char	   *out = xmalloc(cap);

	for (;;)
	{
		char		ch = *s++;

		if (ch == '\0')
		{
			json_err = "unterminated string";
			free(out);
			return NULL;
		}
		if (ch == '"')
			break;
		if (ch == '\\')
		{
			ch = *s++;
			switch (ch)
			{
				case 'n':
					ch = '\n';
					break;
				case 't':
					ch = '\t';
					break;
				case 'r':
					ch = '\r';
					break;
				case 'b':
					ch = '\b';
					break;
				case 'f':
					ch = '\f';
					break;
				case '"':
				case '\\':
				case '/':
					break;
				default:
					json_err = "unsupported escape";
					free(out);
					return NULL;
			}
		}
		if (n + 1 >= cap)
			out = xrealloc(out, cap *= 2);
		out[n++] = ch;
	}
	out[n] = '\0';
	*p = s;
	return out;
}

static void json_free(Json *j);

static int
json_value(const char **p, Json *j, int depth)
{
	memset(j, 0, sizeof(*j));
	json_ws(p);
	if (depth > 32)
	{
		json_err = "nested too deep";
		return -1;
	}
	if (**p == '{' || **p == '[')
	{
		int			obj = **p == '{';
		char		close = obj ? '}' : ']';

		j->type = obj ? J_OBJ : J_ARR;
		(*p)++;
		json_ws(p);
		if (**p == close)
		{
			(*p)++;
			return 0;
		}
		for (;;)
		{
			char	   *key = NULL;

			json_ws(p);
			if (obj)
			{
				if (**p != '"' || !(key = json_string(p)))
				{
					json_err = json_err ? json_err : "expected a key";
					return -1;
				}
				json_ws(p);
				if (**p != ':')
				{
					free(key);
					json_err = "expected ':'";
					return -1;
				}
				(*p)++;
			}
			j->items = xrealloc(j->items, (j->n + 1) * sizeof(Json));
			if (obj)
				j->keys = xrealloc(j->keys, (j->n + 1) * sizeof(char *));
			if (obj)
				j->keys[j->n] = key;
			if (json_value(p, &j->items[j->n], depth + 1) != 0)
			{
				j->n++;
				return -1;
			}
			j->n++;
			json_ws(p);
			if (**p == ',')
			{
				(*p)++;
				continue;
			}
			if (**p == close)
			{
				(*p)++;
				return 0;
			}
			json_err = "expected ',' or a closing bracket";
			return -1;
		}
	}
	if (**p == '"')
	{
		j->type = J_STR;
		j->str = json_string(p);
		return j->str ? 0 : -1;
	}
	if (strncmp(*p, "null", 4) == 0 || strncmp(*p, "true", 4) == 0)
	{
		j->type = **p == 'n' ? J_NULL : J_BOOL;
		j->num = **p == 't';
		*p += 4;
		return 0;
	}
	if (strncmp(*p, "false", 5) == 0)
	{
		j->type = J_BOOL;
		*p += 5;
		return 0;
	}
	{
		char	   *end;

		errno = 0;
		j->num = strtod(*p, &end);
		if (end == *p)
		{
			json_err = "unexpected character";
			return -1;
		}
		j->type = J_NUM;
		*p = end;
		return 0;
	}
}

static void
json_free(Json *j)
{
	for (size_t i = 0; i < j->n; i++)
	{
		json_free(&j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->str);
}

/* Parse a whole file; 0 if it is missing (*j then J_NULL), -1 if bad. */
static int
json_load(const char *path, Json *j, int *missing)
{
	char	   *text = read_file(path);
	const char *p = text;
	int			rc;

	memset(j, 0, sizeof(*j));
	*missing = text == NULL;
	if (!text)
		return 0;
	json_err = NULL;
	rc = json_value(&p, j, 0);
	if (rc == 0)
	{
		json_ws(&p);
		if (*p != '\0')
		{
			json_err = "trailing text";
			rc = -1;
		}
	}
	if (rc != 0)
		fprintf(stderr, "nab_eval: %s: bad JSON near offset %ld: %s\n",
				path, (long) (p - text), json_err ? json_err : "?");
	free(text);
	return rc;
}

static const Json *
json_get(const Json *j, const char *key)
{
	if (!j || j->type != J_OBJ)
		return NULL;
	for (size_t i = 0; i < j->n; i++)
		if (strcmp(j->keys[i], key) == 0)
			return &j->items[i];
	return NULL;
}

/* ------------------------------ timestamps ------------------------------- */

/* days since 1970-01-01 of a proleptic Gregorian date (Hinnant's formula) */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era,
				yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
digits(const char *s, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * "YYYY-MM-DD HH:MM:SS[.ffffff]" (or with 'T'), read as UTC, to microseconds
 * since the epoch.  *end gets the first character after it.  -1 if bad.
 */
static int
parse_ts(const char *s, int64_t *us, const char **end)
{
	int			y,
				mo,
				d,
				h,
				mi,
				se,
				frac = 0,
				nf = 0;

	if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
		digits(s + 8, 2, &d) || (s[10] != ' ' && s[10] != 'T') ||
		digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
		s[16] != ':' || digits(s + 17, 2, &se))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	s += 19;
	if (*s == '.')
	{
		s++;
		while (*s >= '0' && *s <= '9')
		{
			if (nf < 6)
			{
				frac = frac * 10 + (*s - '0');
				nf++;
			}
			s++;
		}
		if (nf == 0)
			return -1;
		while (nf < 6)
		{
			frac *= 10;
			nf++;
		}
	}
	*us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000000) + frac;
	if (end)
		*end = s;
	return 0;
}

/* ------------------------------- the corpus ------------------------------ */

typedef struct File
{
	char	   *rel;			/* "category/name.csv" */
	size_t		nwin;
	int64_t    *win_start,
			   *win_end;
} File;

typedef struct Corpus
{
	size_t		nfiles;
	File	   *files;
	size_t		nwindows;
} Corpus;

static int
load_labels(const char *nab, Corpus *c)
{
	char		path[4096];
	Json		j;
	int			missing;

	snprintf(path, sizeof(path), "%s/labels/combined_windows.json", nab);
	if (json_load(path, &j, &missing) != 0)
		return -1;
	if (missing || j.type != J_OBJ)
	{
		fprintf(stderr, "nab_eval: %s: %s\n", path, missing ? strerror(errno) : "not an object");
		json_free(&j);
		return -1;
	}
	c->nfiles = j.n;
	c->files = xmalloc(j.n * sizeof(File));
	c->nwindows = 0;
	for (size_t i = 0; i < j.n; i++)
	{
		const Json *w = &j.items[i];
		File	   *f = &c->files[i];

		f->rel = xstrdup(j.keys[i]);
		f->nwin = 0;
		f->win_start = xmalloc((w->n + 1) * sizeof(int64_t));
		f->win_end = xmalloc((w->n + 1) * sizeof(int64_t));
		if (w->type != J_ARR)
			goto bad;
		for (size_t k = 0; k < w->n; k++)
		{
			const Json *pair = &w->items[k];

			if (pair->type != J_ARR || pair->n != 2 ||
				pair->items[0].type != J_STR || pair->items[1].type != J_STR ||
				parse_ts(pair->items[0].str, &f->win_start[k], NULL) != 0 ||
				parse_ts(pair->items[1].str, &f->win_end[k], NULL) != 0)
				goto bad;
			f->nwin++;
		}
		c->nwindows += f->nwin;
		continue;
bad:
		fprintf(stderr, "nab_eval: %s: bad windows for %s\n", path, j.keys[i]);
		c->nfiles = i + 1;
		json_free(&j);
		return -1;
	}
	json_free(&j);
	return 0;
}

static void
free_corpus(Corpus *c)
{
	for (size_t i = 0; i < c->nfiles; i++)
	{
		free(c->files[i].rel);
		free(c->files[i].win_start);
		free(c->files[i].win_end);
	}
	free(c->files);
}

/* One file's rows: timestamps and the score column. */
typedef struct Rows
{
	size_t		n;
	int64_t    *ts;
	double	   *score;
} Rows;

/*
 * Read a CSV with a header.  The score column is "anomaly_score", else
 * "score", else the third.  Returns 0, 1 if the file is missing, -1 if bad.
 */
static int
read_rows(const char *path, Rows *r)
{
	char	   *text = read_file(path);
	char	   *line,
			   *next;
	int			col = -1,
				ncol = 0;
	size_t		cap = 0,
				lineno = 1;

	memset(r, 0, sizeof(*r));
	if (!text)
		return 1;
	next = strchr(text, '\n');
	if (next)
		*next++ = '\0';
	/* header */
	for (char *f = text, *comma;; f = comma + 1)
	{
		size_t		len;

		comma = strchr(f, ',');
		len = comma ? (size_t) (comma - f) : strcspn(f, "\r");
		if ((len == 13 && strncmp(f, "anomaly_score", 13) == 0) ||
			(col < 0 && len == 5 && strncmp(f, "score", 5) == 0))
			col = ncol;
		ncol++;
		if (!comma)
			break;
	}
	if (col < 0)
		col = 2;
	for (line = next; line && *line; line = next)
	{
		const char *p;
		char	   *end;
		int64_t		t;
		double		v = NAN;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line[0] == '\r' || line[0] == '\0')
			continue;
		if (parse_ts(line, &t, &p) != 0)
			goto bad;
		for (int k = 0; k < col; k++)
		{
			p = strchr(p, ',');
			if (!p)
				goto bad;
			p++;
		}
		if (*p != ',' && *p != '\r' && *p != '\0')
		{
			v = strtod(p, &end);
			if (end == p || (*end != ',' && *end != '\r' && *end != '\0'))
				goto bad;
		}
		if (r->n == cap)
		{
			cap = cap ? 2 * cap : 4096;
			r->ts = xrealloc(r->ts, cap * sizeof(int64_t));
			r->score = xrealloc(r->score, cap * sizeof(double));
		}
		r->ts[r->n] = t;
		r->score[r->n] = v;
		r->n++;
	}
	free(text);
	return 0;
bad:
	fprintf(stderr, "nab_eval: %s:%zu: cannot read a timestamp and score\n", path, lineno);
	free(text);
	free(r->ts);
	free(r->score);
	memset(r, 0, sizeof(*r));
	return -1;
}

/* Whether t is some row's timestamp (NAB requires window bounds to be).
 * A linear search: NAB's data is not quite sorted (see src/nab.c). */
static int
has_ts(const Rows *r, int64_t t)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->ts[i] == t)
			return 1;
	return 0;
}

/*
 * Load a detector's scores for every corpus file into series[] (rows[]
 * keeps the buffers) from NAB's results tree of det, or from scores_dir
 * when set.  Returns 0, 1 if no file exists, -1 on errors.
 */
static int
load_series(const char *nab, const char *det, const char *scores_dir,
			const Corpus *c, Rows *rows, SmxNabSeries *series)
{
	size_t		found = 0,
				missing = 0;
	int			rc = 0;
	char		first_missing[4096] = "";

	for (size_t i = 0; i < c->nfiles; i++)
	{
		const File *f = &c->files[i];
		char		path[4096];
		const char *slash = strrchr(f->rel, '/');
		int			got;

		if (scores_dir)
			snprintf(path, sizeof(path), "%s/%s", scores_dir, f->rel);
		else if (slash)
			snprintf(path, sizeof(path), "%s/results/%s/%.*s/%s_%s", nab, det,
					 (int) (slash - f->rel), f->rel, det, slash + 1);
		else
			snprintf(path, sizeof(path), "%s/results/%s/%s_%s", nab, det, det, f->rel);
		got = read_rows(path, &rows[i]);
		if (got == 1)
		{
			if (missing++ == 0)
				snprintf(first_missing, sizeof(first_missing), "%s", path);
		}
		else if (got < 0)
			rc = -1;
		else
		{
			found++;
			for (size_t k = 0; k < f->nwin; k++)
				if (!has_ts(&rows[i], f->win_start[k]) || !has_ts(&rows[i], f->win_end[k]))
				{
					fprintf(stderr, "nab_eval: %s: window %zu's bounds are not row timestamps\n",
							path, k);
					rc = -1;
				}
		}
		series[i].n = rows[i].n;
		series[i].ts = rows[i].ts;
		series[i].score = rows[i].score;
		series[i].probation = smx_nab_probation(rows[i].n);
		series[i].nwindows = f->nwin;
		series[i].win_start = f->win_start;
		series[i].win_end = f->win_end;
	}
	if (found == 0 && rc == 0)
		return 1;
	if (missing > 0)
	{
		fprintf(stderr, "nab_eval: %s: %zu of %zu files missing, e.g. %s\n",
				det, missing, c->nfiles, first_missing);
		rc = -1;
	}
	return rc;
}

/* NAB's threshold for det/profile, or NaN. */
static double
nab_threshold(const char *nab, const char *det, const char *profile, const Json *thresholds)
{
	char		path[4096];
	char	   *text,
			   *p;
	double		thr = NAN;
	const Json *t = json_get(json_get(json_get(thresholds, det), profile), "threshold");

	snprintf(path, sizeof(path), "%s/results/%s/%s_%s_scores.csv", nab, det, det, profile);
	text = read_file(path);
	if (text)
	{
		/* Detector,Profile,File,Threshold,...: first data row, 4th field */
		p = strchr(text, '\n');
		for (int k = 0; p && k < 3; k++)
			p = strchr(p + 1, ',');
		if (p)
			thr = strtod(p + 1, NULL);
		free(text);
	}
	/* the CSV has 12 significant digits; thresholds.json, when it is the
	 * same threshold, all of them */
	if (t && t->type == J_NUM &&
		(isnan(thr) || fabs(t->num - thr) <= 1e-9 * fabs(thr)))
		thr = t->num;
	return thr;
}

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Detectors: every directory under NAB_DIR/results, sorted. */
static char **
list_detectors(const char *nab, size_t *n)
{
	char		path[4096];
	DIR		   *d;
	struct dirent *e;
	char	  **out = NULL;

	*n = 0;
	snprintf(path, sizeof(path), "%s/results", nab);
	d = opendir(path);
	if (!d)
		return NULL;
	while ((e = readdir(d)) != NULL)
	{
		struct stat st;
		char		sub[4096 + 512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		out = xrealloc(out, (*n + 1) * sizeof(char *));
		out[(*n)++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (*n > 1)
		qsort(out, *n, sizeof(char *), cmp_str);
	return out;
}

static void
print_num(double v, int width, int prec)
{
	if (isnan(v))
		printf(" %*s", width, "");
	else
		printf(" %*.*f", width, prec, v);
}

typedef struct Tally
{
	int			failed;
	int			checked;
} Tally;

/*
 * Score one detector: the three profiles, a table row each.  Returns 0,
 * 1 when it has no score files (skipped), -1 on errors.
 */
static int
eval_detector(const char *nab, const char *det, const char *scores_dir,
			  const Corpus *c, const Json *published, const Json *thresholds,
			  int strict, int verbose, int time_k, Tally *tally)
{
	Rows	   *rows = xmalloc(c->nfiles * sizeof(Rows));
	SmxNabSeries *series = xmalloc(c->nfiles * sizeof(SmxNabSeries));
	size_t		nrows = 0;
	double		t0,
				t_sweep = 0.0;
	int			rc;

	memset(rows, 0, c->nfiles * sizeof(Rows));
	rc = load_series(nab, det, scores_dir, c, rows, series);
	for (size_t i = 0; i < c->nfiles; i++)
		nrows += rows[i].n;
	for (int p = 0; rc == 0 && p < 3; p++)
	{
		const SmxNabCosts *costs = &smx_nab_profiles[p];
		SmxNabResult res,
					at;
		const Json *pub = scores_dir ? NULL : json_get(json_get(published, det), nab_profile[p]);
		double		pubv = pub && pub->type == J_NUM ? pub->num : NAN;
		double		thr = scores_dir ? NAN : nab_threshold(nab, det, nab_profile[p], thresholds);
		double		atv = NAN;
		const char *verdict = "-";

		t0 = now_sec();
		if (smx_nab_sweep(series, c->nfiles, costs, &res) != 0)
		{
			fprintf(stderr, "nab_eval: %s: smx_nab_sweep failed\n", det);
			rc = -1;
			break;
		}
		t_sweep += now_sec() - t0;
		if (!isnan(thr))
		{
			if (smx_nab_score_at(series, c->nfiles, costs, thr, &at, NULL, NULL) != 0)
			{
				rc = -1;
				break;
			}
			atv = at.normalised;
		}
		if (!isnan(pubv))
		{
			tally->checked++;
			if (fabs(res.normalised - pubv) <= TOLERANCE)
				verdict = "ok";
			else if (!strict && !isnan(atv) && fabs(atv - pubv) <= TOLERANCE &&
					 res.normalised > pubv)
				verdict = "ok at NAB thr";
			else
			{
				verdict = "FAIL";
				tally->failed++;
			}
		}
		printf("%-18s %-19s %14.9g", det, nab_profile[p], res.threshold);
		print_num(res.normalised, 9, 4);
		print_num(pubv, 9, 4);
		print_num(isnan(pubv) ? NAN : res.normalised - pubv, 8, 4);
		if (isnan(thr))
			printf(" %14s", "");
		else
			printf(" %14.9g", thr);
		print_num(atv, 9, 4);
		print_num(isnan(pubv) || isnan(atv) ? NAN : atv - pubv, 8, 4);
		printf(" %4lld %3lld %4lld %4lld  %s\n",
			   (long long) res.tp_windows, (long long) res.fn_windows,
			   (long long) res.fp_rows, (long long) res.fp_events, verdict);
		if (verbose)
			printf("#   raw %.17g null %.17g perfect %.17g threshold %.17g score %.17g score@NAB %.17g rows tp %lld tn %lld fp %lld fn %lld\n",
				   res.raw, res.null_raw, res.perfect_raw, res.threshold,
				   res.normalised, atv,
				   (long long) res.tp_rows, (long long) res.tn_rows,
				   (long long) res.fp_rows, (long long) res.fn_rows);
		if (res.skipped_windows)
			fprintf(stderr, "nab_eval: %s: %lld windows have no row past probation\n",
					det, (long long) res.skipped_windows);
	}
	if (rc == 0)
		fprintf(stderr, "nab_eval: %s: %zu rows, 3 sweeps in %.1f ms\n",
				det, nrows, 1e3 * t_sweep);
	if (rc == 0 && time_k > 0)
	{
		/* the corpus K times over: series share their buffers */
		size_t		nk = c->nfiles * (size_t) time_k;
		SmxNabSeries *big = xmalloc(nk * sizeof(SmxNabSeries));
		SmxNabResult res;

		for (size_t i = 0; i < nk; i++)
			big[i] = series[i % c->nfiles];
		t0 = now_sec();
		if (smx_nab_sweep(big, nk, &smx_nab_profiles[0], &res) != 0)
			rc = -1;
		fprintf(stderr, "nab_eval: %s: standard sweep over %zu rows (corpus x %d): %.1f ms\n",
				det, nrows * (size_t) time_k, time_k, 1e3 * (now_sec() - t0));
		free(big);
	}
	for (size_t i = 0; i < c->nfiles; i++)
	{
		free(rows[i].ts);
		free(rows[i].score);
	}
	free(rows);
	free(series);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *nab;
	const char *scores_dir = NULL;
	char	  **dets = NULL;
	size_t		ndets = 0;
	int			listed = 0,
				strict = 0,
				verbose = 0,
				time_k = 0,
				errors = 0;
	Corpus		corpus;
	Json		published,
				thresholds;
	int			missing;
	char		path[4096];
	Tally		tally = {0, 0};

	if (argc < 2 || argv[1][0] == '-')
	{
		fprintf(stderr, "usage: nab_eval NAB_DIR [--strict] [-v] [--time K] [DETECTOR ...]\n"
				"       nab_eval NAB_DIR [-v] --scores DIR\n");
		return 2;
	}
	nab = argv[1];
	for (int i = 2; i < argc; i++)
	{
		if (strcmp(argv[i], "--scores") == 0 && i + 1 < argc)
			scores_dir = argv[++i];
		else if (strcmp(argv[i], "--strict") == 0)
			strict = 1;
		else if (strcmp(argv[i], "-v") == 0)
			verbose = 1;
		else if (strcmp(argv[i], "--time") == 0 && i + 1 < argc)
			time_k = atoi(argv[++i]);
		else if (argv[i][0] == '-')
		{
			fprintf(stderr, "nab_eval: unknown option %s\n", argv[i]);
			return 2;
		}
		else
		{
			dets = xrealloc(dets, (ndets + 1) * sizeof(char *));
			dets[ndets++] = xstrdup(argv[i]);
		}
	}
	if (scores_dir && ndets > 0)
	{
		fprintf(stderr, "nab_eval: --scores takes no detector names\n");
		return 2;
	}

	if (load_labels(nab, &corpus) != 0)
		return 2;
	snprintf(path, sizeof(path), "%s/results/final_results.json", nab);
	if (json_load(path, &published, &missing) != 0)
		return 2;
	snprintf(path, sizeof(path), "%s/config/thresholds.json", nab);
	if (json_load(path, &thresholds, &missing) != 0)
		return 2;

	if (scores_dir)
	{
		dets = xmalloc(sizeof(char *));
		dets[0] = xstrdup(scores_dir);
		ndets = 1;
	}
	else if (ndets == 0)
	{
		dets = list_detectors(nab, &ndets);
		if (!dets)
		{
			fprintf(stderr, "nab_eval: %s/results: %s\n", nab, strerror(errno));
			return 2;
		}
	}
	else
		listed = 1;

	printf("# NAB corpus: %zu files, %zu windows\n", corpus.nfiles, corpus.nwindows);
	printf("%-18s %-19s %14s %9s %9s %8s %14s %9s %8s %4s %3s %4s %4s  %s\n",
		   "detector", "profile", "threshold", "score", "published", "diff",
		   "NAB threshold", "score@NAB", "diff", "tp", "fn", "fp", "fpev", "verdict");
	for (size_t d = 0; d < ndets; d++)
	{
		int			rc = eval_detector(nab, dets[d], scores_dir,
									   &corpus, &published, &thresholds,
									   strict, verbose, time_k, &tally);

		if (rc < 0)
			errors++;
		else if (rc == 1 && (listed || scores_dir))
		{
			fprintf(stderr, "nab_eval: %s: no score files\n", dets[d]);
			errors++;
		}
	}
	printf("# %d published scores checked, %d not reproduced%s\n",
		   tally.checked, tally.failed, strict ? " (--strict)" : "");

	for (size_t d = 0; d < ndets; d++)
		free(dets[d]);
	free(dets);
	json_free(&published);
	json_free(&thresholds);
	free_corpus(&corpus);
	if (errors)
		return 2;
	return tally.failed ? 1 : 0;
}
