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
 *   oov        unknown-user rows, nothing trained   (OOV, "cloud")
 *   enc        all the encoder's rows               (ENC, "cloud")
 *   enc-b      unknown-user rows, encoder's bias    (ENC_B, "cloud")
 *   enc-ub     ... and the encoder's user row       (ENC_UB, "cloud")
 *   enc-cv     oov, enc-ub or enc, chosen on the device by forward-chaining
 *              cross-validation over the local samples (CV, "cloud")
 *   oov-mp     guarded MetaPatch + bias from oov    (OOV, "mp-fb")
 *   enc-mp     guarded MetaPatch + bias from enc    (ENC, "mp-fb")
 *   enc-cv-b   guarded bias from enc-cv             (CV, "bias")
 *   enc-cv-mp  guarded MetaPatch + bias from enc-cv (CV, "mp-fb")
 *   enc-cv-ft  guarded fine-tuning + bias from it   (CV, "ft-fb")
 *   roc        unknown-user rows, the user row moved towards the user's
 *              clicked items' embeddings, its size chosen by local CV
 *              (rocchio.h; ROC, "cloud"; needs no encoder)
 *   knn        the averaged rows of the trained users whose rows point
 *              along the user's click direction, mixed in by local CV
 *              (knnrows.h; KNN, "cloud")
 *   knn-b, knn-ft-lcoffm-pair, roc-b, roc-ft-lcoffm-pair  guarded bias, guarded fine-tuning with the
 *              pairwise loss, from roc
 *   oov-ft-lcoffm-pair, enc-cv-ft-lcoffm-pair, enc-ub-ft-lcoffm-pair
 *              the same fine-tuning from those starts
 * learn.encoder serves from the CV start.
 * The learn.c method then measures its cross-validated gain, and guards,
 * against the start, not against the cloud model.
 */
#ifndef DEVICED_ENCODER_DEV_H
#define DEVICED_ENCODER_DEV_H

struct ctr;
struct device;

/* Where a start's personal rows come from. */
enum { ENCDEV_CLOUD = 0, ENCDEV_OOV, ENCDEV_ENC, ENCDEV_ENC_B,
	ENCDEV_ENC_UB, ENCDEV_CV, ENCDEV_ROC,
	ENCDEV_KNN };
/* Does a start use the encoder's output? */
#define ENCDEV_USES_ENC(s)	((s) >= ENCDEV_ENC && (s) <= ENCDEV_ENC_UB)

/*
 * A copy of d's cloud model whose personal rows for d->user come from
 * start when the user is cold (and, for the encoder's starts, the model
 * came with an encoder that fits it); otherwise a plain copy. *applied
 * (may be NULL) gets the start used: ENCDEV_CLOUD (a plain copy) or, for
 * ENCDEV_CV, the one cross-validation chose. Job thread; reads d->model,
 * d->enc, d->local and d->dd->cf only.
 */
struct ctr *encoder_dev_start(const struct device *d, int start,
	    int *applied);

/*
 * For an evaluation row name above: *dv becomes a view of d whose model is
 * that row's start (owned by the view: encoder_dev_view_fini; *applied as
 * above), and the learn.c method to run from it is returned. NULL (dv
 * untouched) for any other name.
 */
const char *encoder_dev_view(const struct device *d, const char *name,
	    struct device *dv, int *applied);
void	encoder_dev_view_fini(struct device *dv);

#endif
