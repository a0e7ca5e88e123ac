/*
 * evalagg_report: the evaluation's tables as Markdown and CSV (evalagg.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scripts/tools/evalagg.h"
#include "scripts/tools/evalagg_int.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

/* --- output -------------------------------------------------------------- */

/* Metrics shown, in column order, per task. */
static const int ctr_cols[] = { EVALAGG_GAUC, EVALAGG_AUC, EVALAGG_LOGLOSS,
	EVALAGG_IMPROVED, EVALAGG_LT_GAUC };
static const int rank_cols[] = { EVALAGG_HR, EVALAGG_NDCG, EVALAGG_GAUC,
	EVALAGG_IMPROVED };
/* CSV: every metric that means something for the task. */
static const int ctr_csv[] = { EVALAGG_GAUC, EVALAGG_AUC, EVALAGG_LOGLOSS,
	EVALAGG_IMPROVED, EVALAGG_WORSE, EVALAGG_LT_GAUC };
static const int rank_csv[] = { EVALAGG_HR, EVALAGG_NDCG, EVALAGG_GAUC,
	EVALAGG_AUC, EVALAGG_IMPROVED, EVALAGG_WORSE, EVALAGG_LT_GAUC };

/*
 * The row label of a method in the Markdown table: a readable name for the
 * methods deviced knows (the code stays in the CSV and in parentheses).
 */
static const char *
method_label(const char *code, char *buf, size_t len)
{
	static const char *const map[][2] = {
		{ "cloud", "cloud model only" },
		{ "naive-ft", "naive fine-tuning" },
		{ "ft-guard", "fine-tuning, guarded" },
		{ "ft-lc", "fine-tuning + label correction (soft)" },
		{ "ft-lcoff", "fine-tuning + label correction (offset)" },
		{ "ft-coda", "fine-tuning + CoDA" },
		{ "ft-lc-coda", "fine-tuning + label correction + CoDA" },
		{ "metapatch", "MetaPatch" },
		{ "mp-lc-coda", "MetaPatch + label correction + CoDA" },
		{ "ft-coda-u", "fine-tuning + CoDA by similar users" },
		{ "mp-lc-coda-u", "MetaPatch + LC + CoDA by similar users" },
		{ "oov", "cold: trained unknown-user rows" },
		{ "enc", "cold: auxiliary encoder's rows" },
		{ "enc-ub", "cold: encoder's user row + bias" },
		{ "enc-cv", "cold: encoder start chosen by CV" },
		{ "enc-cv-b", "encoder start (CV) + bias" },
		{ "enc-cv-mp", "encoder start (CV) + MetaPatch" },
		{ "ofa-low", "Forward-OFA, low budget" },
		{ "ofa-mid", "Forward-OFA, mid budget" },
		{ "ofa-high", "Forward-OFA, high budget" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], code) == 0) {
			snprintf(buf, len, "%s (%s)", map[i][1], code);
			return buf;
		}
	return code;
}

static const char *
metric_title(int m, int k, char *buf, size_t len)
{
	switch (m) {
	case EVALAGG_GAUC: return "GAUC";
	case EVALAGG_AUC: return "AUC";
	case EVALAGG_LOGLOSS: return "logloss";
	case EVALAGG_IMPROVED: return "users improved / worse";
	case EVALAGG_WORSE: return "users worse";
	case EVALAGG_LT_GAUC: return "long-tail GAUC";
	case EVALAGG_HR: snprintf(buf, len, "HR@%d", k); return buf;
	case EVALAGG_NDCG: snprintf(buf, len, "NDCG@%d", k); return buf;
	}
	return "?";
}

static const char *
metric_key(int m, int k, char *buf, size_t len)
{
	switch (m) {
	case EVALAGG_GAUC: return "gauc";
	case EVALAGG_AUC: return "auc";
	case EVALAGG_LOGLOSS: return "logloss";
	case EVALAGG_IMPROVED: return "users_improved";
	case EVALAGG_WORSE: return "users_worse";
	case EVALAGG_LT_GAUC: return "lt_gauc";
	case EVALAGG_HR: snprintf(buf, len, "hr%d", k); return buf;
	case EVALAGG_NDCG: snprintf(buf, len, "ndcg%d", k); return buf;
	}
	return "?";
}

static const int cmp_metric[EVALAGG_N_CMP] = { EVALAGG_GAUC, EVALAGG_HR,
	EVALAGG_NDCG, EVALAGG_LT_GAUC, EVALAGG_LOGLOSS };

/* Comparisons shown for the task, in column order (task_has_cmp()). */
static size_t
task_cmps(enum evalagg_task t, int *out)
{
	if (t == EVALAGG_CTR) {
		out[0] = EVALAGG_CMP_GAUC;
		out[1] = EVALAGG_CMP_LT_GAUC;
		out[2] = EVALAGG_CMP_LOGLOSS;
		return 3;
	}
	out[0] = EVALAGG_CMP_HR;
	out[1] = EVALAGG_CMP_NDCG;
	out[2] = EVALAGG_CMP_GAUC;
	out[3] = EVALAGG_CMP_LT_GAUC;
	return 4;
}

/* Users improved / worse: two shares in one cell, in per cent. */
static void
md_users(FILE *fp, const struct evalagg_row *row)
{
	double b = 100 * row->mean[EVALAGG_IMPROVED];
	double w = 100 * row->mean[EVALAGG_WORSE];

	if (row->is_baseline || isnan(b))
		fputs(" — |", fp);
	else if (row->n_runs > 1)
		fprintf(fp, " %.1f ± %.1f / %.1f ± %.1f %% |", b,
		    100 * row->std[EVALAGG_IMPROVED], w,
		    100 * row->std[EVALAGG_WORSE]);
	else
		fprintf(fp, " %.1f / %.1f %% |", b, w);
}

static void
md_cell(FILE *fp, const struct evalagg_row *row, int m, size_t n_runs)
{
	double mu = row->mean[m], sd = row->std[m];
	int pct = m == EVALAGG_IMPROVED || m == EVALAGG_WORSE;

	if (isnan(mu)) {
		fputs(" — |", fp);
		return;
	}
	if (pct) {
		mu *= 100;
		sd *= 100;
	}
	fprintf(fp, pct ? " %.1f %%" : " %.4f", mu);
	if (n_runs > 1)
		fprintf(fp, pct ? " ± %.1f" : " ± %.4f", sd);
	fputs(" |", fp);
}

void
evalagg_write_md(FILE *fp, const struct evalagg_result *res,
    const struct evalagg_extra *x, const char *title)
{
	const int *cols = res->task == EVALAGG_CTR ? ctr_cols : rank_cols;
	size_t nc = res->task == EVALAGG_CTR ? sizeof(ctr_cols) /
	    sizeof(ctr_cols[0]) : sizeof(rank_cols) / sizeof(rank_cols[0]);
	int cmps[EVALAGG_N_CMP];
	size_t ncmp = task_cmps(res->task, cmps), n_extra = x ? x->n_col : 0;
	int any_sig = 0;
	char buf[32];
	char label[128];

	if (title != NULL)
		fprintf(fp, "### %s (task %s)\n\n", title,
		    res->task == EVALAGG_CTR ? "ctr" : "ranking");
	fputs("| method |", fp);
	for (size_t i = 0; i < nc; i++)
		fprintf(fp, " %s |", metric_title(cols[i], res->k, buf,
		    sizeof(buf)));
	for (size_t i = 0; i < ncmp; i++)
		fprintf(fp, " Δ%s vs %s [95 %% CI] |",
		    metric_title(cmp_metric[cmps[i]], res->k, buf,
		    sizeof(buf)), res->baseline);
	for (size_t i = 0; i < n_extra; i++)
		fprintf(fp, " %s |", x->col[i]);
	fputs("\n|---|", fp);
	for (size_t i = 0; i < nc + ncmp + n_extra; i++)
		fputs("---|", fp);
	fputs("\n", fp);
	for (size_t r = 0; r < res->n_row; r++) {
		const struct evalagg_row *row = &res->row[r];

		fprintf(fp, "| %s |", method_label(row->method, label,
		    sizeof(label)));
		for (size_t i = 0; i < nc; i++) {
			if (cols[i] == EVALAGG_IMPROVED)
				md_users(fp, row);
			else
				md_cell(fp, row, cols[i], row->n_runs);
		}
		for (size_t i = 0; i < ncmp; i++) {
			const struct metrics_ci *ci = &row->ci[cmps[i]];
			int sig;

			if (!row->has_ci[cmps[i]]) {
				fputs(" — |", fp);
				continue;
			}
			/* * : Holm; ° : the raw interval only */
			sig = row->p_holm[cmps[i]] < 0.05 ? 2 :
			    ci->lo > 0 || ci->hi < 0;
			any_sig |= sig;
			fprintf(fp, " %+.4f [%+.4f, %+.4f]%s |", ci->mean,
			    ci->lo, ci->hi, sig == 2 ? " *" : sig ? " °" : "");
		}
		for (size_t i = 0; i < n_extra; i++) {
			double v = evalagg_extra_get(x, row->method, i);

			/* Byte counts and the like: no exponent. */
			if (isnan(v))
				fputs(" — |", fp);
			else if (fabs(v) >= 1e4)
				fprintf(fp, " %.0f |", v);
			else
				fprintf(fp, " %.4g |", v);
		}
		fputs("\n", fp);
	}
	fputs("\n", fp);
	if (res->n_runs > 1)
		fprintf(fp, "- %zu runs (seeds); cells are mean ± sample std "
		    "over runs.", res->n_runs);
	else
		fputs("- 1 run (one seed): no spread.", fp);
	fprintf(fp, " %zu users with test rows; GAUC is the impression-"
	    "weighted mean of per-user AUC over users with both classes.\n",
	    res->n_users);
	if (res->task == EVALAGG_RANKING)
		fprintf(fp, "- HR@%d, NDCG@%d: each test positive ranked "
		    "against its own block of sampled negatives, scored in "
		    "its context (ties count against it), averaged over "
		    "positives.\n", res->k, res->k);
	fprintf(fp, "- users improved / worse: shares of users whose "
	    "per-user AUC is above / below %s's, among users with both "
	    "classes under both (the rest are ties).\n", res->baseline);
	fprintf(fp, "- long-tail%s: in each run, the %.0f %% of users (%zu) "
	    "with the fewest %s (<= %u each), ties broken by user id.\n",
	    res->task == EVALAGG_CTR ? "" : " (CSV: lt_gauc)",
	    100 * res->tail_frac, res->n_tail, res->tail_from_counts ?
	    "local samples" : res->task == EVALAGG_CTR ?
	    "test rows (no --user-counts)" :
	    "test positives (no --user-counts)", res->tail_max_count);
	fprintf(fp, "- Δ: paired per-user bootstrap (%d resamples of users) "
	    "of the mean per-user difference against %s; each user's "
	    "difference is averaged over runs, users weighted by %s; "
	    "long-tail: the same over the tail users; logloss: per-user "
	    "logloss, weighted by rows (lower is better). %s\n", res->boot,
	    res->baseline, res->task == EVALAGG_CTR ?
	    "impressions" : "positives (HR, NDCG) or impressions (GAUC)",
	    any_sig ? "" : "No interval excludes 0.");
	fprintf(fp, "- Family-wise: * = significant at 5 %% after Holm's "
	    "adjustment over all %zu comparisons of this table (p from the "
	    "bootstrap standard error)%s; ° = the 95 %% interval excludes 0 "
	    "but the Holm-adjusted p does not pass.\n", res->n_family,
	    res->reference[0] ? ", the reference row left out" : "");
	if (res->reference[0])
		fprintf(fp, "- %s: a reference, not a method (the synthetic "
		    "data's true click probabilities).\n", res->reference);
	if (n_extra > 0)
		fputs("- extra columns (from the *.extra files): mean over "
		    "all devices and runs.\n", fp);
	for (size_t r = 1; r < res->n_row; r++)
		if (res->row[r].n_users != res->n_users ||
		    res->row[r].n_runs != res->n_runs)
			fprintf(fp, "- %s: rows for %zu of %zu users in %zu "
			    "of %zu runs; comparisons use the users present "
			    "under both.\n", res->row[r].method,
			    res->row[r].n_users, res->n_users,
			    res->row[r].n_runs, res->n_runs);
}

static void
csv_num(FILE *fp, double v)
{
	if (isnan(v))
		fputs(",", fp);
	else
		fprintf(fp, ",%.6f", v);
}

void
evalagg_write_csv(FILE *fp, const struct evalagg_result *res,
    const struct evalagg_extra *x)
{
	const int *cols = res->task == EVALAGG_CTR ? ctr_csv : rank_csv;
	size_t nc = res->task == EVALAGG_CTR ? sizeof(ctr_csv) /
	    sizeof(ctr_csv[0]) : sizeof(rank_csv) / sizeof(rank_csv[0]);
	int cmps[EVALAGG_N_CMP];
	size_t ncmp = task_cmps(res->task, cmps), n_extra = x ? x->n_col : 0;
	char buf[32];

	fputs("method", fp);
	for (size_t i = 0; i < nc; i++) {
		const char *k = metric_key(cols[i], res->k, buf, sizeof(buf));

		fprintf(fp, ",%s,%s_std", k, k);
	}
	for (size_t i = 0; i < ncmp; i++) {
		const char *k = metric_key(cmp_metric[cmps[i]], res->k, buf,
		    sizeof(buf));

		fprintf(fp, ",d_%s,d_%s_lo,d_%s_hi,d_%s_users,d_%s_p,"
		    "d_%s_p_holm", k, k, k, k, k, k);
	}
	fputs(",n_runs,n_users", fp);
	for (size_t i = 0; i < n_extra; i++)
		fprintf(fp, ",%s", x->col[i]);
	fputs("\n", fp);
	for (size_t r = 0; r < res->n_row; r++) {
		const struct evalagg_row *row = &res->row[r];

		fputs(row->method, fp);
		for (size_t i = 0; i < nc; i++) {
			csv_num(fp, row->mean[cols[i]]);
			csv_num(fp, row->n_runs > 1 ? row->std[cols[i]] : NAN);
		}
		for (size_t i = 0; i < ncmp; i++) {
			const struct metrics_ci *ci = &row->ci[cmps[i]];

			if (!row->has_ci[cmps[i]]) {
				fputs(",,,,,,", fp);
				continue;
			}
			csv_num(fp, ci->mean);
			csv_num(fp, ci->lo);
			csv_num(fp, ci->hi);
			fprintf(fp, ",%zu", ci->n);
			csv_num(fp, row->p[cmps[i]]);
			csv_num(fp, row->p_holm[cmps[i]]);
		}
		fprintf(fp, ",%zu,%zu", row->n_runs, row->n_users);
		for (size_t i = 0; i < n_extra; i++)
			csv_num(fp, evalagg_extra_get(x, row->method, i));
		fputs("\n", fp);
	}
}
