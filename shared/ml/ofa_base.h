/*
 * ofa_base: the part of Forward-OFA's input that follows its CTR base
 * model's options (ofa.h, ofa_inputs): after the six fixed fields, the
 * base's side fields, with interaction its field dots, and with fm its FM
 * term fm_w . dots (the last column, added to OFA's logit). ofa_fits_ctr
 * is in ofa.c (it reads the OFA model).
 */
#ifndef SHARED_OFA_BASE_H
#define SHARED_OFA_BASE_H

struct ctr;
struct dataset;
struct sample;

/* C0, the width of x0 for a CTR base emb (ofa.h, ofa_inputs). */
int	ofa_input_dim(const struct ctr *emb);

/*
 * Fills x's columns after the six fixed fields (which must be filled:
 * the dots read them) for sample s of ds.
 */
void	ofa_inputs_extra(const struct ctr *emb, const struct dataset *ds,
	    const struct sample *s, float *x);

#endif
