// The built-in MNIST as a Datasets source (server/context.ts).
import type { Datasets, LoadedDataset } from '../context.ts';
import { answerDatasetRequest, mnistShardInfo } from './dataset-files.ts';
import { loadMnist } from './mnist.ts';

export class BuiltinDatasets implements Datasets {
  private mnist: LoadedDataset;

  constructor(private readonly dataDir: string) {
    const { train, test } = loadMnist(dataDir);
    this.mnist = {
      train,
      test,
      info: { name: 'mnist', features: train.features, classes: train.classes, trainCount: train.count, testCount: test.count, shards: mnistShardInfo(dataDir), source: 'builtin', createdAt: 0 },
    };
  }

  get(name: string): LoadedDataset | undefined {
    return name === 'mnist' ? this.mnist : undefined;
  }

  list() {
    return [this.mnist.info];
  }

  answer(path: string) {
    return answerDatasetRequest(this.dataDir, path);
  }
}
