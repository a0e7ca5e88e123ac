/*
 * ofa_ctrl: Forward-OFA's behaviour controller (ofa_config.ctrl_hidden =
 * Hc > 0), a small MLP in place of the linear controller, so that the
 * structure can depend on behaviour and not only on the budget.
 *
 *   zin (ZB)  [z, budget], as the linear controller reads it
 *   u  = (zin - mu) * sc       (ZB)  standardisation: mu, sc start at the
 *                                    training data's mean and 1/sd
 *                                    (ofa_ctrl_fit_scale), then train
 *   h  = relu(W1 u + b1)       (Hc)
 *   c  = W2 h + b2             (L)   the gate logits, as before
 *
 * Why: the linear controller reads z in raw embedding units, about 0.05,
 * next to a budget of 0.25..1, and learned a lookup on the budget (one
 * structure per class over all users). Standardising puts both on one
 * scale and the hidden layer lets the ranking of blocks change with z.
 * Tensors (base section, ofa.c): ctl_w = W2 (L,Hc), ctl_b = b2 (L),
 * ctl_mu (ZB), ctl_sc (ZB), ctl_w1 (Hc,ZB), ctl_b1 (Hc).
 * Threads: pure functions of their arguments.
 */
#ifndef SHARED_OFA_CTRL_H
#define SHARED_OFA_CTRL_H

#include <stddef.h>
#include <stdint.h>

#define OFA_CTRL_MAX_HIDDEN	256

struct ofa_ctrl_w {
	float	*mu, *sc, *w1, *b1, *w2, *b2;
};

/* h (Hc) and cl (L) for one zin (ZB). */
void	ofa_ctrl_forward(const struct ofa_ctrl_w *w, int ZB, int Hc, int L,
	    const float *zin, float *h, float *cl);
/*
 * Accumulates into g the gradient of one sample given dcl (L) = dLoss /
 * dc, with zin and h from its forward.
 */
void	ofa_ctrl_backward(const struct ofa_ctrl_w *w, const struct ofa_ctrl_w *g,
	    int ZB, int Hc, int L, const float *zin, const float *h,
	    const float *dcl);
/* mu, sc (ZB) from n rows zin (n,ZB): mean and 1/sd (1 where sd ~ 0). */
void	ofa_ctrl_fit_scale(float *mu, float *sc, const float *zin, size_t n,
	    int ZB);
/* FLOPs of one controller pass. */
double	ofa_ctrl_flops(int ZB, int Hc, int L);

#endif
