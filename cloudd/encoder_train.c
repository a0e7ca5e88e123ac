/*
 * encoder_train: fits the auxiliary encoder after a model (encoder_train.h).
 * The settings are enc_fit's defaults; what varies by data is chosen on
 * the pool's validation slice inside enc_fit (the epoch of each candidate,
 * and the candidate: constant rows, fit through the model, regression).
 */
#include <errno.h>

#include "cloudd/cloudd.h"
#include "cloudd/encoder_train.h"
#include "shared/log.h"

void
encoder_train(struct ctr *m, const struct dataset *ds, const uint32_t *tri,
    size_t ntr, const uint32_t *vai, size_t nva, const struct cloudd_conf *cf,
    atomic_int *stop, struct enc **out, enum enc_mode *mode)
{
	struct enc_fit_opts o;
	struct enc_fit_report r;
	int rc;

	*out = NULL;
	enc_fit_opts_default(&o);
	o.seed = (uint64_t)cf->seed;
	o.stop = stop;
	if ((rc = enc_fit(out, m, ds, tri, ntr, vai, nva, &o, &r)) != 0) {
		log_warnx("ENCODER: not trained (%s); the model ships without "
		    "one", rc == -ECANCELED ? "stopped" : rc == -ERANGE ?
		    "diverged" : "no users with training and validation "
		    "samples");
		return;
	}
	*mode = r.chosen;
	log_info("ENCODER: %zu users, val logloss on %zu samples of %zu "
	    "users: learned rows %.4f, unknown-user rows %.4f (epoch %d), "
	    "fit %.4f (epoch %d), reg %.4f (epoch %d); shipped %s, %.1f s",
	    r.n_users, r.n_val, r.n_val_users, r.val_rows, r.val_const,
	    r.ep_const, r.val_fit, r.ep_fit, r.val_reg, r.ep_reg,
	    enc_mode_name(r.chosen), r.seconds);
}
