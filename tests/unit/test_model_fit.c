/*
 * Unit tests for deviced/model_fit.c: a cloud model's side fields against
 * the local data's: the same fit, an empty device takes the model's, and
 * every kind of difference is refused with a message naming it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "deviced/model_fit.h"

static void
setup(struct ctr_config *c, struct dataset *d, uint32_t n_side, size_t n)
{
	memset(c, 0, sizeof(*c));
	memset(d, 0, sizeof(*d));
	c->n_side = d->n_side = n_side;
	for (uint32_t k = 0; k < n_side; k++)
		c->side_card[k] = d->side_card[k] = 3 + k;
	d->n = n;
}

static void
test_same(void **st)
{
	struct ctr_config c;
	struct dataset d;
	char err[256] = "";

	(void)st;
	setup(&c, &d, 4, 10);
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_OK);
	setup(&c, &d, 0, 10);	/* neither has side fields */
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_OK);
	setup(&c, &d, 0, 0);	/* empty device, model without fields */
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_OK);
}

static void
test_adopt(void **st)
{
	struct ctr_config c;
	struct dataset d;
	char err[256] = "";

	(void)st;
	setup(&c, &d, 2, 0);
	d.n_side = 0;
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_ADOPT);
	/* No samples, but side fields of its own (the store's kv): compared. */
	setup(&c, &d, 2, 0);
	d.side_card[1] = 9;
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_REFUSED);
}

static void
test_refused(void **st)
{
	struct ctr_config c;
	struct dataset d;
	char err[256];

	(void)st;
	setup(&c, &d, 4, 10);	/* local data without side fields */
	d.n_side = 0;
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_REFUSED);
	assert_non_null(strstr(err, "the model has 4 side fields, the local "
	    "data 0"));
	setup(&c, &d, 0, 10);	/* the reverse */
	d.n_side = 1;
	d.side_card[0] = 5;
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_REFUSED);
	assert_non_null(strstr(err, "the model has 0 side fields, the local "
	    "data 1"));
	setup(&c, &d, 3, 10);	/* another card */
	d.side_card[2] = 6;
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_REFUSED);
	assert_non_null(strstr(err, "side field 2 has 5 values in the model, "
	    "6 in the local data"));
	setup(&c, &d, 3, 10);	/* more fields in the model */
	c.n_side = 4;
	assert_int_equal(model_fit_check(&c, &d, err, sizeof(err)),
	    MODEL_FIT_REFUSED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
