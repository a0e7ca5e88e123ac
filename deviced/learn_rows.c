/*
 * learn_rows: the table of the learning job's methods and what a row's
 * name says (learn_rows.h).
 */
#include <stdlib.h>
#include <string.h>

#include "deviced/learn.h"
#include "deviced/learn_rows.h"

/*
 * The evaluation rows. "naive-ft" is plain fine-tuning as in the papers
 * (the fixed setting, no selection, no guard); "*-cv" pick their setting
 * by cross-validation but always adopt it (the unguarded gain the guard is
 * measured against); the rest are guarded.
 */
static const struct method methods[] = {
	{ "cloud",	ADAPT_NONE, LC_NONE, 0, 0, SEL_FIXED, 0, 0 },
	{ "naive-ft",	ADAPT_FT, LC_NONE, 0, 0, SEL_FIXED, 0, 0 },
	{ "ft-cv",	ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-guard",	ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "ft-lc",	ADAPT_FT, LC_SOFT, TGT_GLOBAL, 0, SEL_GUARD, 0, 0 },
	{ "ft-lcm",	ADAPT_FT, LC_SOFT, TGT_MODEL, 0, SEL_GUARD, 0, 0 },
	{ "ft-lcoff",	ADAPT_FT, LC_OFFSET, TGT_GLOBAL, 0, SEL_GUARD, 0, 0 },
	{ "ft-lcoffm",	ADAPT_FT, LC_OFFSET, TGT_MODEL, 0, SEL_GUARD, 0, 0 },
	{ "ft-coda",	ADAPT_FT, LC_NONE, 0, 1, SEL_GUARD, 0, 0 },
	{ "ft-lc-coda",	ADAPT_FT, LC_SOFT, TGT_GLOBAL, 1, SEL_GUARD, 0, 0 },
	{ "ft-lcm-coda", ADAPT_FT, LC_SOFT, TGT_MODEL, 1, SEL_GUARD, 0, 0 },
	{ "ft-coda-u",	ADAPT_FT, LC_NONE, 0, 1, SEL_GUARD, 1, 0 },
	{ "metapatch",	ADAPT_MP, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "mp-cv",	ADAPT_MP, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "mp-lc-coda",	ADAPT_MP, LC_SOFT, TGT_GLOBAL, 1, SEL_GUARD, 0, 0 },
	{ "mp-lcm-coda", ADAPT_MP, LC_SOFT, TGT_MODEL, 1, SEL_GUARD, 0, 0 },
	{ "mp-lc-coda-u", ADAPT_MP, LC_SOFT, TGT_GLOBAL, 1, SEL_GUARD, 1, 0 },
	{ "bias",	ADAPT_BIAS, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "ft-fb",	ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 1 },
	{ "ft-lcoffm-fb", ADAPT_FT, LC_OFFSET, TGT_MODEL, 0, SEL_GUARD, 0, 1 },
	{ "mp-fb",	ADAPT_MP, LC_NONE, 0, 0, SEL_GUARD, 0, 1 },
	{ "ft-pscv",	ADAPT_FT, LC_NONE, 0, 0, SEL_PSCV, 0, 0 },
	{ "ft-ps",	ADAPT_FT, LC_NONE, 0, 0, SEL_PS, 0, 0 },
	{ "ft-ps-fb",	ADAPT_FT, LC_NONE, 0, 0, SEL_PS, 0, 1 },
	{ "mp-pscv",	ADAPT_MP, LC_NONE, 0, 0, SEL_PSCV, 0, 0 },
	{ "mp-ps",	ADAPT_MP, LC_NONE, 0, 0, SEL_PS, 0, 0 },
	{ "mp-ps-fb",	ADAPT_MP, LC_NONE, 0, 0, SEL_PS, 0, 1 },
	/* "-pair": BCE plus the pairwise loss (rows_pair) */
	{ "ft-pair-cv",	ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-pair",	ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "ft-pair-fb",	ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 1 },
	{ "ft-lcoffm-pair", ADAPT_FT, LC_OFFSET, TGT_MODEL, 0, SEL_GUARD, 0, 0 },
	{ "mp-pair-cv",	ADAPT_MP, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "mp-pair-fb",	ADAPT_MP, LC_NONE, 0, 0, SEL_GUARD, 0, 1 },
	/* CoDA's kept samples (similar samples, "-u" similar users) trained
	   on with the pairwise loss over the user's own pairs (cold users) */
	{ "ft-coda-pair-cv", ADAPT_FT, LC_NONE, 0, 1, SEL_CV, 0, 0 },
	{ "ft-coda-pair", ADAPT_FT, LC_NONE, 0, 1, SEL_GUARD, 0, 0 },
	{ "ft-coda-u-pair", ADAPT_FT, LC_NONE, 0, 1, SEL_GUARD, 1, 0 },
	{ "ft-lcoffm-coda-pair", ADAPT_FT, LC_OFFSET, TGT_MODEL, 1, SEL_GUARD,
	  0, 0 },
	{ "ft-lcoffm-coda-u-pair", ADAPT_FT, LC_OFFSET, TGT_MODEL, 1,
	  SEL_GUARD, 1, 0 },
	/* the best cold-user GAUC row, the bias alone where its guard
	   refuses (calibration for the rest) */
	{ "ft-lcoffm-pair-fb", ADAPT_FT, LC_OFFSET, TGT_MODEL, 0, SEL_GUARD,
	  0, 1 },
	{ "ft-lcoffm-pair3-fb", ADAPT_FT, LC_OFFSET, TGT_MODEL, 0, SEL_GUARD,
	  0, 1 },
	{ "ft-pair3-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	/* the ranking preset's method, unguarded: the gain its guard keeps */
	{ "ft-lcoffm-pair3-cv", ADAPT_FT, LC_OFFSET, TGT_MODEL, 0, SEL_CV, 0,
	  0 },
	/* logit-space shrinkage toward the cloud model (mix.h) */
	{ "ft-mix-cv",	ADAPT_FT, LC_NONE, 0, 0, SEL_MIXCV, 0, 0 },
	{ "ft-mix",	ADAPT_FT, LC_NONE, 0, 0, SEL_MIX, 0, 0 },
	{ "ft-mix-fb",	ADAPT_FT, LC_NONE, 0, 0, SEL_MIX, 0, 1 },
	{ "ft-mixr",	ADAPT_FT, LC_NONE, 0, 0, SEL_MIXR, 0, 0 },
	{ "ft-pair-mix-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_MIXCV, 0, 0 },
	{ "ft-pair-mix", ADAPT_FT, LC_NONE, 0, 0, SEL_MIX, 0, 0 },
	{ "ft-pair-mix-fb", ADAPT_FT, LC_NONE, 0, 0, SEL_MIX, 0, 1 },
	{ "ft-pair-mixr", ADAPT_FT, LC_NONE, 0, 0, SEL_MIXR, 0, 0 },
	{ "ft-pair3-mix-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_MIXCV, 0, 0 },
	{ "ft-pair3-mix", ADAPT_FT, LC_NONE, 0, 0, SEL_MIX, 0, 0 },
	/* recency-weighted local losses (recency.h) */
	{ "ft-rec1-cv",	ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-rec3-cv",	ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-rec3",	ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "ft-pair-rec3-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-pair3-rec3-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-rec3-mix-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_MIXCV, 0, 0 },
	/* recalibrated on the CV's out-of-fold logits (calib.h) */
	{ "ft-cal-cv",	ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-pair-cal-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-pair3-cal-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-pair9-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-pair9-cal-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-pair3-cal", ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "ft-pair3-cal-fb", ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 1 },
	/* the pair weight the cloud chose for the fleet (learn.c pair_at) */
	{ "ft-pairw-cv", ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-pairw",	ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ NULL, 0, 0, 0, 0, 0, 0, 0 }
};

/*
 * Weight of the pairwise loss (pairwise.h) added to BCE: 1 for the rows
 * named "...-pair" or "...-pair-*", k for "...-pairk[-*]" (k 2..9),
 * learn.pair-weight for the served method, else 0.
 */
float
rows_pair(const struct deviced_conf *cf, const struct method *m)
{
	const char *q = strstr(m->name, "-pair");

	if (strcmp(m->name, "serve") == 0)
		return (float)cf->pair_weight;
	if (q != NULL && q[5] >= '2' && q[5] <= '9' &&
	    (q[6] == '\0' || q[6] == '-'))
		return (float)(q[5] - '0');	/* "-pair3": weight 3 */
	return q != NULL && (q[5] == '\0' || q[5] == '-') ? 1.0f : 0.0f;
}

int
learn_pair_family(const struct deviced_conf *cf, const char *name)
{
	const char *q = strstr(name, "-pairw");

	if (strcmp(name, "serve") == 0)
		return cf->pair_select == 1;
	return q != NULL && (q[6] == '\0' || q[6] == '-');
}

/* "...-cal[-*]": the row's scores are recalibrated (calib.h). */
int
rows_cal(const struct method *m)
{
	const char *q = strstr(m->name, "-cal");

	return q != NULL && (q[4] == '\0' || q[4] == '-');
}

/*
 * Strength k of the recency weights (recency.h) of the rows named
 * "...-reck[-*]" (k 1..9), else 0.
 */
double
rows_rec(const struct method *m)
{
	const char *q = strstr(m->name, "-rec");

	if (q != NULL && q[4] >= '1' && q[4] <= '9' &&
	    (q[5] == '\0' || q[5] == '-'))
		return q[4] - '0';
	return 0;
}

/*
 * The "-w<N>" at the end of a row's name (a method run with a training
 * window of N samples instead of learn.window), or NULL.
 */
const char *
rows_win_suffix(const char *name)
{
	const char *q = strrchr(name, '-');
	size_t i;

	if (q == NULL || q[1] != 'w' || q[2] < '1' || q[2] > '9')
		return NULL;
	for (i = 3; q[i] != '\0'; i++)
		if (q[i] < '0' || q[i] > '9' || i > 9)
			return NULL;
	return q;
}

/* The training window of m's fits: its "-w<N>", else learn.window. */
size_t
rows_window(const struct deviced_conf *cf, const struct method *m)
{
	const char *q = rows_win_suffix(m->name);

	return q != NULL ? (size_t)strtoul(q + 2, NULL, 10) :
	    (size_t)cf->window;
}

const struct method *
rows_get(const char *name)
{
	for (const struct method *m = methods; m->name; m++)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/*
 * name, or "<name>-def" / "<name>-fed" of a method that chooses its
 * setting (into *tmp, with its pick), each optionally ending in "-w<N>"
 * (into *tmp named name: its training window); NULL if none.
 */
const struct method *
rows_find(const char *name, struct method *tmp, int *pick)
{
	const struct method *m = rows_get(name);
	const char *ws = rows_win_suffix(name);
	size_t n = strlen(name);
	char base[64];

	*pick = PICK_NONE;
	if (m == NULL && ws != NULL && ws > name &&
	    (size_t)(ws - name) < sizeof(base)) {
		memcpy(base, name, (size_t)(ws - name));
		base[ws - name] = '\0';
		if ((m = rows_find(base, tmp, pick)) == NULL ||
		    m->adapt == ADAPT_NONE)
			return NULL;
		*tmp = *m;
		tmp->name = name;
		return tmp;
	}
	if (m != NULL || n < 5 || n - 4 >= sizeof(base))
		return m;
	memcpy(base, name, n - 4);
	base[n - 4] = '\0';
	if ((m = rows_get(base)) == NULL || m->sel == SEL_FIXED ||
	    m->adapt == ADAPT_NONE)
		return NULL;
	*tmp = *m;
	if (strcmp(name + n - 4, "-def") == 0)
		*pick = PICK_DEF;
	else if (strcmp(name + n - 4, "-fed") == 0)
		*pick = PICK_FED;
	else
		return NULL;
	return tmp;
}

/*
 * The served method: learn.adapt, .lc, .coda, guarded, its fallback; its
 * setting the cloud's with learn.select = fed. Returns the pick.
 */
int
rows_serve(const struct deviced_conf *cf, struct method *m)
{
	struct method s = { "serve", cf->adapt, cf->lc, cf->lc_target,
		cf->coda, SEL_GUARD, 0, cf->bias_fallback };

	*m = s;
	return cf->select == 1 ? PICK_FED : PICK_NONE;
}

int
learn_method_info(const char *name, struct learn_method_info *out)
{
	struct method tmp;
	int pick;
	const struct method *m = rows_find(name, &tmp, &pick);

	if (m == NULL)
		return -1;
	out->name = pick || m == &tmp ? name : m->name;
	out->adapts = m->adapt != ADAPT_NONE;
	out->finetune = m->adapt == ADAPT_FT;
	out->coda = m->coda;
	out->users = m->users;
	return 0;
}

