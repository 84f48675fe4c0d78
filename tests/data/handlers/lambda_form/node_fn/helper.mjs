export const NAME = "node helper";
