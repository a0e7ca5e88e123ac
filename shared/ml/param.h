/*
 * param: a model's parameters as one table of named tensors over one float
 * buffer, with the gradient buffer, the Adam moments and the row-sparse
 * bookkeeping beside it. The CTR and Forward-OFA models (and any third
 * model) describe their layout with param_add and keep only their forward
 * and backward passes; allocation, initialisation, zeroing, SGD/Adam and
 * snapshots are here, written once.
 *
 * Layout: tensors lie back to back in the order they were added, the
 * order the model file serialises them in; the gradient buffer mirrors the
 * parameter buffer, so a dense optimiser step or a snapshot is one loop or
 * one memcpy. A sparse tensor (an embedding table, a per-user table) is
 * updated and zeroed only on the rows its backward pass marked in the
 * tensor's struct kern_rows, so a step costs O(batch), not O(table);
 * its Adam moments exist only for the rows ever stepped (struct
 * param_rowmom), so a device's fine-tune allocates and clears none of a
 * table's moments.
 *
 * Ownership: struct param_table is embedded in the model; the tensor array
 * and the kern_rows array are the model's (fixed-size arrays in its
 * struct), the buffers are the table's (param_free). Threads: one thread
 * per table at a time.
 */
#ifndef SHARED_ML_PARAM_H
#define SHARED_ML_PARAM_H

#include <stddef.h>
#include <stdint.h>

#include "shared/ml/kern.h"

struct rng;

/* A named view of one parameter tensor. */
struct param_tensor {
	char		 name[24];	/* "emb_item", "mlp0_w", "b2_gw" */
	float		*data;		/* into the parameter buffer */
	float		*grad;		/* into the gradient buffer */
	uint32_t	 shape[2];	/* rows, cols; ndim 1 uses shape[0] */
	int		 ndim;
	size_t		 n;		/* number of floats */
	int		 sparse;	/* row-sparse updates */
	unsigned	 kind;		/* the model's class of it (what a
					   step may train): enum ctr_tkind */
	int		 block;		/* the model's slice of it, -1 = none
					   (Forward-OFA's block) */
};

/*
 * The Adam moments of a sparse tensor, compact: a row gets its moments when
 * a step first updates it (lazy Adam), so a device's fine-tuning holds
 * moments for the rows its samples touch, not for the whole table.
 */
struct param_rowmom {
	uint32_t	*slot;	/* (rows) 1 + the row's index in m, v; 0 = none */
	float		*m, *v;	/* (cap, cols) */
	uint32_t	 n, cap;
};

struct param_table {
	int		 n_tensors;
	struct param_tensor *t;		/* (n_tensors), the model's array */
	struct kern_rows *rows;		/* (n_tensors), sparse tensors only */
	size_t		 n_params;
	float		*params;	/* (n_params) */
	float		*grads;		/* (n_params) */
	size_t		 n_dense;	/* floats of the dense tensors */
	float		*adam_m;	/* (n_dense), at the first Adam step: */
	float		*adam_v;	/* the dense tensors' in their order */
	struct param_rowmom *rm;	/* (n_tensors), with adam_m; sparse
					   tensors only */
	long		 adam_t;
};

enum param_optim { PARAM_OPT_SGD = 0, PARAM_OPT_ADAM };

struct param_opt {
	enum param_optim kind;
	float		 lr, beta1, beta2, eps, wd;
};

/*
 * Appends a tensor of r x c floats to a layout being walked: t[*nt] is
 * filled if t != NULL (a walk that only counts passes NULL), *nt and
 * *total advance. The factors are the caller's bounded sizes.
 */
void	param_add(struct param_tensor *t, int *nt, size_t *total,
	    const char *name, size_t r, size_t c, int ndim, int sparse,
	    unsigned kind, int block);

/*
 * Allocates the zeroed parameter and gradient buffers for the n tensors of
 * t (filled by param_add), points every tensor into them, and allocates
 * the row bookkeeping of each sparse tensor in rows (n).
 */
void	param_alloc(struct param_table *p, struct param_tensor *t, int n,
	    struct kern_rows *rows);
/*
 * The row sets (struct kern_rows) of every sparse tensor of t (n), empty:
 * param_alloc's for the gradient rows; a model's own further sets (ctr's
 * change tracking) too. param_rows_free frees and zeroes them.
 */
void	param_rows_alloc(const struct param_tensor *t, int n,
	    struct kern_rows *rows);
void	param_rows_free(const struct param_tensor *t, int n,
	    struct kern_rows *rows);
/* As param_alloc, the parameters left unwritten: for a caller that
   writes every one next (a clone copies a whole model over them). */
void	param_alloc_raw(struct param_table *p, struct param_tensor *t, int n,
	    struct kern_rows *rows);
/*
 * A view's table (ctr_view): tensor i reads shared[i] (another table's
 * data, which this one never writes) or, where shared[i] is NULL, gets
 * zeroed storage of its own; n_params counts every tensor; no gradient
 * buffer (param_grads_ensure makes one, in param_alloc's layout).
 * param_own then copies every tensor into one buffer of the table's own
 * in param_alloc's layout (copy on write), after which the table is an
 * ordinary one.
 */
void	param_alloc_view(struct param_table *p, struct param_tensor *t, int n,
	    struct kern_rows *rows, float *const *shared);
void	param_own(struct param_table *p);
/* Frees what param_alloc and the optimiser allocated; p may be zeroed. */
void	param_free(struct param_table *p);
/*
 * A table only read (a device's installed model; training works on a
 * clone) need not hold gradients: release frees them (every tensor's grad
 * becomes NULL), ensure gives them back, zeroed, when they are missing.
 */
void	param_grads_release(struct param_table *p);
void	param_grads_ensure(struct param_table *p);
/* Copies src's Adam state into dst (same layout); none if src has none. */
void	param_copy_adam(struct param_table *dst, const struct param_table *src);

/* Tensor i (NULL out of range), and the tensor named name (NULL: none). */
struct param_tensor *param_at(const struct param_table *p, int i);
struct param_tensor *param_find(const struct param_table *p,
	    const char *name);

/* p[0..n) = std * N(0,1), and a * U(-1,1), drawn from r in order. */
void	param_fill_normal(float *p, size_t n, double std, struct rng *r);
void	param_fill_unif(float *p, size_t n, double a, struct rng *r);

/*
 * Zeroes the gradients: a sparse tensor's marked rows, and every dense
 * tensor unless dense_clean (the caller knows no dense gradient was
 * written since the last zeroing).
 */
void	param_zero_grad(struct param_table *p, int dense_clean);

/*
 * One optimiser step over the tensors whose kind is in the bit set kinds
 * (bit k = kind k): dense tensors whole, sparse tensors on their marked
 * rows. The Adam moments are allocated at the first Adam step, and the
 * step count advances once per Adam call. Returns 0 or -EINVAL (lr
 * negative or not finite, unknown kind).
 */
int	param_step(struct param_table *p, unsigned kinds,
	    const struct param_opt *o);

#endif
