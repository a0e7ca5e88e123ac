/*
 * encoder_dev: the device half of DCCL's auxiliary encoder
 * (shared/ml/encoder.h). A user the cloud never trained (cold: the model's
 * MetaPatch m and bias rows of that id are exactly zero, as initialised)
 * gets personal rows (user embedding, m, b) from the encoder shipped with
 * the model, computed from the device's local samples, or the cloud's
 * trained unknown-user rows (the model's OOV rows). A warm user keeps the
 * rows the cloud learned.
 *
 * Evaluation rows (deviced.eval-methods), each a start and a learn.c
 * method run from it:
 *   oov      unknown-user rows, nothing trained      (start OOV, "cloud")
 *   enc      encoder rows, nothing trained           (start ENC, "cloud")
 *   oov-mp   guarded MetaPatch + bias from oov       (start OOV, "mp-fb")
 *   enc-mp   guarded MetaPatch + bias from enc       (start ENC, "mp-fb")
 *   enc-ft   guarded fine-tuning + bias from enc     (start ENC, "ft-fb")
 * The learn.c method then measures its cross-validated gain, and guards,
 * against the start, not against the cloud model.
 */
#ifndef DEVICED_ENCODER_DEV_H
#define DEVICED_ENCODER_DEV_H

struct ctr;
struct device;

/* Where a start's personal rows come from. */
enum { ENCDEV_CLOUD = 0, ENCDEV_OOV, ENCDEV_ENC, ENCDEV_ENC_B,
	ENCDEV_ENC_UB, ENCDEV_CV };

/*
 * A copy of d's cloud model whose personal rows for d->user come from
 * start when the user is cold (and, for ENCDEV_ENC, the model came with
 * an encoder); otherwise a plain copy. *applied (may be NULL) says which.
 * Job thread; reads d->model, d->enc and d->local only.
 */
struct ctr *encoder_dev_start(const struct device *d, int start,
	    int *applied);

/*
 * For an evaluation row name above: *dv becomes a view of d whose model is
 * that row's start (owned by the view: encoder_dev_view_fini), and the
 * learn.c method to run from it is returned. NULL (dv untouched) for any
 * other name.
 */
const char *encoder_dev_view(const struct device *d, const char *name,
	    struct device *dv);
void	encoder_dev_view_fini(struct device *dv);

#endif
