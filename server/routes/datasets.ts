// Dataset upload (admin): POST /api/datasets, multipart with a `name` field and one CSV file,
// two IDX files (images and labels), or one UTF-8 text file (.txt or text/plain, a character
// corpus), gzip'd or not. Parsing and validation live in
// server/data/upload.ts; this route only reads the parts and answers. At most RATE_LIMITS.upload
// uploads a minute per address (429 with Retry-After beyond).
import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../auth.ts';
import type { CoordinatorContext } from '../context.ts';
import { DatasetUploadError, UPLOAD_LIMITS, type UploadFile } from '../data/upload.ts';
import { ERROR_STATUS, HttpError, sendError } from '../errors.ts';
import { uploadRateLimit } from '../web-security.ts';

export async function datasetRoutes(app: FastifyInstance, ctx: CoordinatorContext): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: UPLOAD_LIMITS.maxBytes, files: 2, fields: 4, parts: 6 } });
    // The rate limit before the admin check, so a flood of uploads is refused before a token is
    // hashed or a byte of the upload read.
    scope.post('/api/datasets', { onRequest: [scope.rateLimit(uploadRateLimit), requireAdmin] }, async (req, reply) => {
      if (!req.isMultipart()) return sendError(reply, new HttpError('unsupported_media_type', 'send multipart/form-data with a name field and one CSV file, two IDX files or one UTF-8 .txt file'));
      let name = '';
      const files: UploadFile[] = [];
      try {
        for await (const part of req.parts()) {
          if (part.type === 'field') {
            if (part.fieldname === 'name') name = String(part.value).trim();
            continue;
          }
          const bytes = await part.toBuffer();
          if (part.file.truncated) throw new DatasetUploadError(`${part.filename}: larger than the ${UPLOAD_LIMITS.maxBytes} bytes an upload may be`, 'too_large');
          files.push({ filename: part.filename, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), type: part.mimetype });
        }
      } catch (err) {
        if (err instanceof DatasetUploadError) return reply.code(err.status).send({ error: err.code, message: err.message });
        const e = err as Error & { code?: string; statusCode?: number };
        // A Fastify or multipart client error keeps its status (413 for too many parts, say).
        return reply.code(e.statusCode && e.statusCode < 500 ? e.statusCode : ERROR_STATUS.bad_upload).send(new HttpError('bad_upload', `could not read the upload: ${e.message}`).body());
      }
      if (!name) return sendError(reply, new HttpError('missing_name', 'give the dataset a name (field "name")'));
      if (files.length === 0) return sendError(reply, new HttpError('missing_file', 'attach one CSV file, two IDX files (images and labels), or one UTF-8 .txt file (a text to model)'));
      try {
        ctx.datasets.addUpload(name, files);
      } catch (err) {
        if (err instanceof DatasetUploadError) return reply.code(err.status).send({ error: err.code, message: err.message });
        req.log.error({ err }, 'dataset upload failed');
        return sendError(reply, new HttpError('internal', `the upload could not be stored: ${(err as Error).message}`));
      }
      req.log.info({ dataset: name, files: files.map((f) => f.filename) }, 'dataset uploaded');
      return reply.code(201).send({ dataset: ctx.datasets.summary(name) });
    });
  });
}
