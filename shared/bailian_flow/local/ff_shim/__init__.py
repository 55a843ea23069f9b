"""The source file functions-framework loads for the local HTTP trigger (a file and a target name)."""
