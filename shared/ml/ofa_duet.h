/*
 * ofa_duet: a per-sample parameter generator in the style of DUET (Lv et
 * al., WWW 2023, Forward-OFA's predecessor; ofa_config.gen_hidden = Hg >
 * 0). DUET's hypernetwork turns each sample's behaviour encoding into the
 * weights of its layers; here a shared hidden layer does that for the
 * mapper of every block:
 *
 *   u   = relu(Wh z + bh)            (Hg)   shared by the blocks
 *   g_l = Wg_l u + bg_l              (R)    per block (Wg_l is (R,Hg))
 *   W_l = W_l0 + A_l diag(g_l) Bm_l         as Forward-OFA's mapper
 *
 * against Forward-OFA's linear g_l = Wg_l z + bg_l. It is trained and
 * served with every block (OFA_GATE_ALL: DUET chooses no structure) and
 * with z recomputed for every impression. Tensors (base section, ofa.c):
 * gen_w (Hg,Z), gen_b (Hg). Threads: pure functions of their arguments.
 */
#ifndef SHARED_OFA_DUET_H
#define SHARED_OFA_DUET_H

#define OFA_DUET_MAX_HIDDEN	256

/* u (B,Hg) = relu(z Wh^T + bh) for z (B,Z). */
void	ofa_duet_forward(const float *wh, const float *bh, const float *z,
	    int B, int Z, int Hg, float *u);
/*
 * du (B,Hg) = dLoss/du (overwritten: masked by relu); accumulates the
 * gradients of Wh and bh into gwh, gbh.
 */
void	ofa_duet_backward(float *gwh, float *gbh, float *du, const float *u,
	    const float *z, const float *wh, int B, int Z, int Hg);
/* FLOPs of one generator hidden layer. */
double	ofa_duet_flops(int Z, int Hg);

#endif
