// Validation of every API input (path parameters and query strings). Bad input is a 400 with a
// message naming the parameter; nothing unvalidated reaches SQL.
import { z } from 'zod';
import { CURVE_X } from './experiment-report';
import { METRIC_COLUMNS, X_COLUMNS } from './run-columns';

const integerText = (min: number) =>
  z
    .string()
    .regex(/^-?\d{1,15}$/, 'must be an integer')
    .transform(Number)
    .refine((value) => value >= min, `must be >= ${min}`);

const numberText = () =>
  z
    .string()
    .refine(
      (text) => text.trim() !== '' && Number.isFinite(Number(text)),
      'must be a finite number',
    )
    .transform(Number);

export const MAX_POINTS = 20_000;
export const DEFAULT_POINTS = 2_000;

export const runIdSchema = integerText(1);

export const seriesQuerySchema = z
  .object({
    metric: z
      .enum(METRIC_COLUMNS, { message: `must be one of ${METRIC_COLUMNS.join(', ')}` })
      .default('loss'),
    x: z.enum(X_COLUMNS, { message: `must be one of ${X_COLUMNS.join(', ')}` }).default('step'),
    from: numberText().optional(),
    to: numberText().optional(),
    afterStep: integerText(-1).optional(),
    points: integerText(10)
      .refine((value) => value <= MAX_POINTS, `must be <= ${MAX_POINTS}`)
      .default(DEFAULT_POINTS),
  })
  .strict()
  .refine((query) => query.from === undefined || query.to === undefined || query.from <= query.to, {
    message: 'from must be <= to',
    path: ['from'],
  });

export const experimentQuerySchema = z
  .object({
    x: z.enum(CURVE_X, { message: `must be one of ${CURVE_X.join(', ')}` }).default('step'),
    points: integerText(10)
      .refine((value) => value <= MAX_POINTS, `must be <= ${MAX_POINTS}`)
      .default(500),
  })
  .strict();

export const experimentNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'not an experiment name');

export const evalsQuerySchema = z.object({ afterStep: integerText(-1).optional() }).strict();

export const emptyQuerySchema = z.object({}).strict();

/** One line naming each offending parameter. */
export function describeIssues(error: z.ZodError, label = 'query'): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length > 0 ? issue.path.join('.') : label;
      const message =
        issue.code === 'unrecognized_keys'
          ? `unknown parameter(s): ${issue.keys.join(', ')}`
          : issue.message;
      return `${where}: ${message}`;
    })
    .join('; ');
}
