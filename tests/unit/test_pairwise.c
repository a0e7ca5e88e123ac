/*
 * test_pairwise: the pairwise loss of the "-pair" rows (deviced/pairwise.c).
 *
 * - Its gradient matches central finite differences of the loss, with
 *   and without a mask, and with ties and large logit gaps.
 * - Without a (click, no-click) pair the loss and gradient are zero.
 * - Entering it through BCE's targets, as learn_path.c does
 *   (y' = y - B g / w), gives BCE's gradient plus the pairwise one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "deviced/pairwise.h"
#include "shared/ml/kern.h"

#define B	7

static void
test_gradient(void **state)
{
	float z[B] = { 0.3f, -1.2f, 2.5f, 0.3f, -7.0f, 9.0f, 0.0f };
	const float y[B] = { 1, 0, 1, 0, 1, 0, 1 };
	const unsigned char use[B] = { 1, 1, 1, 1, 1, 1, 0 };
	float g[B], g2[B];

	(void)state;
	for (int k = 0; k < 2; k++) {
		const unsigned char *u = k == 0 ? NULL : use;
		double l = pairwise_loss(z, y, u, B, g);
		assert_true(l > 0 && isfinite(l));
		for (int i = 0; i < B; i++) {
			const float h = 1e-2f;
			float zi = z[i];
			z[i] = zi + h;
			double lp = pairwise_loss(z, y, u, B, g2);
			z[i] = zi - h;
			double lm = pairwise_loss(z, y, u, B, g2);
			z[i] = zi;
			double fd = (lp - lm) / (2 * h);
			assert_true(fabs(fd - g[i]) <= 1e-4 + 1e-3 * fabs(fd));
		}
		if (u != NULL)
			assert_true(g[6] == 0);	/* masked out */
	}
}

static void
test_no_pair(void **state)
{
	const float z[3] = { 1, 2, 3 }, y[3] = { 1, 1, 1 };
	const unsigned char use[3] = { 1, 0, 0 };
	const float y2[3] = { 1, 0, 0 };
	float g[3] = { 5, 5, 5 };

	(void)state;
	assert_true(pairwise_loss(z, y, NULL, 3, g) == 0);
	assert_true(g[0] == 0 && g[1] == 0 && g[2] == 0);
	assert_true(pairwise_loss(z, y2, use, 3, g) == 0);
	assert_true(g[0] == 0 && g[1] == 0 && g[2] == 0);
}

static void
test_through_targets(void **state)
{
	const float z[B] = { 0.3f, -1.2f, 2.5f, 0.3f, -7.0f, 9.0f, 0.0f };
	const float y[B] = { 1, 0, 1, 0, 1, 0, 1 };
	const float w[B] = { 1, 1, 0.5f, 1, 2, 1, 1 };
	float g[B], y2[B], d0[B] = { 0 }, d1[B] = { 0 };
	const float lam = 0.7f;

	(void)state;
	(void)pairwise_loss(z, y, NULL, B, g);
	for (int b = 0; b < B; b++)
		y2[b] = y[b] - lam * (float)B * g[b] / w[b];
	bce_logits_backward(d0, z, y, w, NULL, B);
	bce_logits_backward(d1, z, y2, w, NULL, B);
	for (int b = 0; b < B; b++)
		assert_true(fabsf(d1[b] - (d0[b] + lam * g[b])) <= 1e-6f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gradient),
		cmocka_unit_test(test_no_pair),
		cmocka_unit_test(test_through_targets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
