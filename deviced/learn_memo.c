/*
 * learn_memo: the shared work of the evaluation rows (learn_memo.h): one
 * entry per (prep, method key) holding its cross-validation's choice and
 * up to MEMO_FITS final fits. Owned by one learning job, so one thread.
 * Moved out of learn.c, which computes the keys and fills the entries.
 */
#include <stdlib.h>
#include <string.h>

#include "deviced/learn_memo.h"
#include "shared/xmalloc.h"

struct learn_memo *
learn_memo_new(void)
{
	return xcalloc(1, sizeof(struct learn_memo));
}

void
learn_memo_free(struct learn_memo *mm)
{
	if (mm == NULL)
		return;
	for (int i = 0; i < mm->n; i++)
		for (int j = 0; j < mm->e[i].nfit; j++)
			free(mm->e[i].fit[j].params);
	free(mm);
}

/* The entry of (p, method key); a new one if there is room, else NULL. */
struct memo_ent *
learn_memo_get(struct learn_memo *mm, const struct learn_prep *p, int adapt,
    int lc, int tgt, int coda, int ps, float pair, size_t window)
{
	struct memo_ent *e;

	if (mm == NULL)
		return NULL;
	for (int i = 0; i < mm->n; i++) {
		e = &mm->e[i];
		if (e->p == p && e->adapt == adapt && e->lc == lc &&
		    e->tgt == tgt && e->coda == coda &&
		    e->ps == ps &&
		    e->pair == pair && e->window == window)
			return e;
	}
	if (mm->n == MEMO_MAX)
		return NULL;
	e = &mm->e[mm->n++];
	memset(e, 0, sizeof(*e));
	e->p = p;
	e->adapt = adapt;
	e->lc = lc;
	e->tgt = tgt;
	e->coda = coda;
	e->ps = ps;
	e->pair = pair;
	e->window = window;
	return e;
}

struct memo_fit *
learn_memo_fit_find(struct memo_ent *e, double lr, int steps)
{
	for (int i = 0; e != NULL && i < e->nfit; i++)
		if (e->fit[i].lr == lr && e->fit[i].steps == steps)
			return &e->fit[i];
	return NULL;
}
