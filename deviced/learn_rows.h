/*
 * learn_rows: the learning job's methods (learn.c) as named rows. A row
 * is one path through the stages (adapt, label correction, CoDA, how the
 * setting is chosen, the bias fallback); the evaluation (learn_eval.c)
 * and the served job name them. Besides the table, a row's name carries
 * options its suffixes give: "-pair[k]" the pairwise loss weight,
 * "-rec<k>" recency weights, "-cal" the recalibration, "-def"/"-fed" the
 * default or the cloud's grid point, "-w<N>" the training window.
 */
#ifndef DEVICED_LEARN_ROWS_H
#define DEVICED_LEARN_ROWS_H

#include <stddef.h>

#include "deviced/deviced.h"
#include "deviced/label_correct.h"	/* a method's lc: enum lc_mode */

/* learn.adapt's order: none, metapatch, finetune, bias */
enum { ADAPT_NONE = 0, ADAPT_MP, ADAPT_FT, ADAPT_BIAS };
/*
 * How a method picks its (lr, steps) setting and whether it is guarded;
 * the PS forms also choose a partial step (partial.h) by the same CV.
 */
enum { SEL_FIXED = 0, SEL_CV, SEL_GUARD, SEL_PSCV, SEL_PS,
	SEL_MIXCV, SEL_MIX, SEL_MIXR };
#define SEL_GUARDED(s)	((s) == SEL_GUARD || (s) == SEL_PS)
#define SEL_PARTIAL(s)	((s) == SEL_PSCV || (s) == SEL_PS)
/*
 * The "-mix" rows (mix.h): the setting as SEL_CV chooses it, then a
 * logit-space weight a by the same CV: largest gain (MIXCV: adopted
 * when a > 0; MIX: and guarded) or most net pairs (MIXR, guarded).
 */
#define SEL_MIXING(s)	((s) >= SEL_MIXCV)
/* What label correction aligns the local rate to (label_correct.h). */
enum { TGT_GLOBAL = 0, TGT_MODEL };

struct method {
	const char	*name;
	int		 adapt, lc, tgt, coda, sel;
	int		 users;		/* CoDA set retrieved by similar users */
	int		 fb;		/* guard refuses: try the bias alone */
};

/*
 * A row "<method>-def" runs method at its default grid point, and
 * "<method>-fed" at the point the cloud chose for method (federated
 * selection); a guarded one still guards with its local CV at that point.
 * The pick is learn.c's run1's argument (the table's rows choose their
 * own).
 */
enum { PICK_NONE = 0, PICK_DEF, PICK_FED };


/* The table's row of that name, or NULL. */
const struct method *rows_get(const char *name);
/*
 * name as a row: the table's, or "<row>-def" / "<row>-fed" (into *tmp,
 * with its pick), each optionally ending in "-w<N>" (into *tmp, named
 * name); NULL if none.
 */
const struct method *rows_find(const char *name, struct method *tmp,
	    int *pick);
/* The served method (learn.adapt, .lc, .coda, guarded, its fallback);
 * returns its pick (PICK_FED with learn.select = fed). */
int	rows_serve(const struct deviced_conf *cf, struct method *m);
/* The pairwise loss weight m's name gives (learn.pair-weight served). */
float	rows_pair(const struct deviced_conf *cf, const struct method *m);
/* Whether m's scores are recalibrated ("-cal"). */
int	rows_cal(const struct method *m);
/* m's recency-weight strength ("-rec<k>"), else 0. */
double	rows_rec(const struct method *m);
/* The "-w<N>" ending of a row's name, or NULL. */
const char *rows_win_suffix(const char *name);
/* The training window of m's fits: its "-w<N>", else learn.window. */
size_t	rows_window(const struct deviced_conf *cf, const struct method *m);

#endif
