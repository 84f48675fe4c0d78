NAME = "python helper"
